//! Where a reading ends: enriched output, DLQ with a reason, or counted duplicate.

use crate::model::{DlqReason, EnrichedReading};

/// A rejected reading: the DLQ reason and a human-readable detail without PHI
/// (field names and limits, never identifiers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// DLQ reason.
    pub reason: DlqReason,
    /// Detail header, e.g. `"weight_kg=512.000 outside 2..=400"`.
    pub detail: String,
}

impl Rejection {
    /// A rejection with the given reason and detail.
    pub fn new(reason: DlqReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// The outcome of processing one input record.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned by value and consumed at once; boxing cost a heap allocation per reading"
)]
pub enum Disposition<'a> {
    /// Accepted: publish on the enriched topic. Strings borrow from the
    /// input record.
    Enriched(EnrichedReading<'a>),
    /// Rejected: publish the original bytes on the DLQ.
    Dlq(Rejection),
    /// A reading id already seen within the dedup horizon: count and drop.
    Duplicate,
    /// A reading of a deleted (tombstoned) patient: count and drop, write
    /// nowhere, not even the DLQ (erased data must not be retained).
    Erased,
}

impl Disposition<'_> {
    /// Detaches an enriched reading from the input record it borrows from.
    pub fn into_owned(self) -> Disposition<'static> {
        match self {
            Self::Enriched(e) => Disposition::Enriched(e.into_owned()),
            Self::Dlq(r) => Disposition::Dlq(r),
            Self::Duplicate => Disposition::Duplicate,
            Self::Erased => Disposition::Erased,
        }
    }
}
