//! The DLQ `reason` header: why a reading was dead-lettered. Part of the
//! topic contract, shared by the codec (a record that does not decode) and
//! the processing core (one that does not validate).

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
