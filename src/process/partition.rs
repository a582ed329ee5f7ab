//! [`PartitionState`]: everything the processor holds for one input
//! partition. Its changelog form (records written, state restored) is the
//! state layer's business ([`crate::state`]); this module knows nothing of it.

use super::{AlertEngine, DedupStore, HrvWindows};

/// State of one input partition.
#[derive(Debug, Clone)]
pub struct PartitionState {
    /// Reading ids seen.
    pub dedup: DedupStore,
    /// Open HRV windows.
    pub hrv: HrvWindows,
    /// Alert history, cool-downs, readings awaiting confirmation.
    pub alerts: AlertEngine,
    /// Offset after the last input record processed (the input offset this
    /// state reflects); `None` before the first.
    pub next_offset: Option<i64>,
}
