//! [`PatientHasher`]: the keyed hash of a patient id.
//!
//! SipHash-2-4 with 128-bit output: a pseudo-random function designed for
//! short inputs under a secret 128-bit key, so without the key a hash
//! cannot be tested against candidate ids. It runs once per reading (the
//! erased check and the dedup key share it), where keyed BLAKE3 cost about
//! five times as much on ids of a dozen bytes (std's `Instant` loop, 2M ids,
//! release build). The 128-bit key is derived from the configured secret
//! with BLAKE3's `derive_key`, so a secret of any length and shape works.

use std::fmt;

use siphasher::sip128::SipHasher24;

/// Context string of the key derivation (BLAKE3 `derive_key`): a key
/// derived for this purpose is never the same as one for another.
const CONTEXT: &str = "vitalstream 2026-11 erased patient id hash v1";

/// The key used when `erasure.hash_key` is not configured. It is public, so
/// the hashes it makes can be tested against candidate ids: start-up warns.
const BUILT_IN_KEY: &[u8] = b"vitalstream built-in erasure key: set erasure.hash_key";

/// A 128-bit keyed hash of a patient id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PatientHash(pub u128);

impl PatientHash {
    /// The 64 bits dedup keys carry for the patient.
    pub fn dedup_part(self) -> u64 {
        // Truncation intended: the low half of the hash.
        #[allow(clippy::cast_possible_truncation)]
        let low = self.0 as u64;
        low
    }

    /// 32 lower-case hex digits.
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    /// Parses [`Self::to_hex`]'s form.
    pub fn from_hex(hex: &str) -> Option<Self> {
        (hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u128::from_str_radix(hex, 16).ok().map(Self))
            .flatten()
    }
}

impl fmt::Debug for PatientHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PatientHash({:032x})", self.0)
    }
}

/// Keyed hash (SipHash-2-4-128) of patient ids. Every instance of a group must use the same
/// key, for ever: hashes made under another key match nothing.
#[derive(Clone, Copy)]
pub struct PatientHasher {
    key: [u8; 32],
    sip: SipHasher24,
    builtin: bool,
}

impl PartialEq for PatientHasher {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for PatientHasher {}

impl fmt::Debug for PatientHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PatientHasher")
            .field("key_id", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl Default for PatientHasher {
    /// The built-in (public) key.
    fn default() -> Self {
        Self {
            builtin: true,
            ..Self::new(BUILT_IN_KEY)
        }
    }
}

impl PatientHasher {
    /// A hasher keyed by `secret` (any length; the key is derived from it).
    pub fn new(secret: &[u8]) -> Self {
        let key = blake3::derive_key(CONTEXT, secret);
        let mut sip_key = [0u8; 16];
        sip_key.copy_from_slice(&key[..16]);
        Self {
            key,
            sip: SipHasher24::new_with_key(&sip_key),
            builtin: false,
        }
    }

    /// Whether this is the built-in, public key.
    pub fn is_builtin(&self) -> bool {
        self.builtin
    }

    /// The hash of a patient id (or of a record key holding one).
    pub fn hash(&self, patient_id: &[u8]) -> PatientHash {
        PatientHash(self.sip.hash(patient_id).as_u128())
    }

    /// A short public fingerprint of the key (16 hex digits), stored with
    /// every erasure record so that an instance configured with another key
    /// notices instead of silently matching nothing.
    pub fn key_id(&self) -> String {
        let out = blake3::keyed_hash(&self.key, b"\0vitalstream key id");
        out.to_hex()[..16].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_depends_on_the_key_and_round_trips_as_hex() {
        let a = PatientHasher::new(b"secret-a");
        let b = PatientHasher::new(b"secret-b");
        assert_eq!(a.hash(b"p-1"), a.hash(b"p-1"));
        assert_ne!(a.hash(b"p-1"), a.hash(b"p-2"));
        assert_ne!(a.hash(b"p-1"), b.hash(b"p-1"));
        assert_ne!(a.key_id(), b.key_id());
        assert!(PatientHasher::default().is_builtin() && !a.is_builtin());
        let h = a.hash(b"p-1");
        assert_eq!(PatientHash::from_hex(&h.to_hex()), Some(h));
        assert!(!h.to_hex().contains("p-1"));
        assert_eq!(PatientHash::from_hex("zz"), None);
    }
}
