//! Where a reading ends: enriched output, DLQ with a reason, or counted duplicate.

use crate::model::EnrichedReading;

/// The DLQ `reason` header values (DESIGN.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DlqReason {
    /// The payload does not decode.
    Malformed,
    /// The Confluent schema id is not a known writer schema.
    UnknownSchema,
    /// A value is outside its plausibility range; detail names the field.
    OutOfRange,
    /// `measured_at` is beyond the allowed clock skew ahead of the processor clock.
    FutureTimestamp,
    /// `measured_at` is older than the dedup horizon, so dedup cannot be guaranteed.
    TooOld,
    /// No profile exists for the patient.
    UnknownPatient,
    /// The Kafka key differs from the reading's patient id.
    KeyMismatch,
    /// The reading was valid but its output could not be encoded (a defect; kept, not lost).
    ProcessingError,
}

impl DlqReason {
    /// Every reason, for metrics registration and summaries.
    pub const ALL: [DlqReason; 8] = [
        Self::Malformed,
        Self::UnknownSchema,
        Self::OutOfRange,
        Self::FutureTimestamp,
        Self::TooOld,
        Self::UnknownPatient,
        Self::KeyMismatch,
        Self::ProcessingError,
    ];

    /// Whether the reason signals a broken producer (DESIGN.md §3), which the
    /// invalid-ratio guard counts: undecodable records, unknown schemas,
    /// mis-keyed records and implausible values. Readings of patients not
    /// onboarded yet, readings too old to dedup, a device clock ahead and
    /// our own encode defects are normal operation (or ours), not the
    /// producer's fault.
    pub fn signals_broken_producer(self) -> bool {
        matches!(
            self,
            Self::Malformed | Self::UnknownSchema | Self::KeyMismatch | Self::OutOfRange
        )
    }

    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownSchema => "unknown_schema",
            Self::OutOfRange => "out_of_range",
            Self::FutureTimestamp => "future_timestamp",
            Self::TooOld => "too_old",
            Self::UnknownPatient => "unknown_patient",
            Self::KeyMismatch => "key_mismatch",
            Self::ProcessingError => "processing_error",
        }
    }

    /// Parses a header value.
    pub fn from_wire(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

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
