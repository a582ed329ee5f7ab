//! Hash maps of the processing state, keyed by patient id or by pre-hashed
//! dedup keys.
//!
//! The standard library's SipHash was the largest single cost of the hot
//! path after decoding (callgrind). foldhash is much cheaper on short keys
//! and still seeded randomly per map, so keys chosen to collide would have to
//! guess the seed.

/// A `HashMap` with foldhash.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
/// A `HashSet` with foldhash.
pub type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
