//! `HrvWindow`: heart-rate variability over one closed event-time window
//! (DESIGN.md §4), as published on `vitals.hrv.windows` (`schemas/hrv_window.avsc`).

use rust_decimal::Decimal;

/// Heart-rate variability of one patient over one closed tumbling window.
///
/// Produced by [`crate::process::HrvWindows`]. All metric values are `Some`
/// exactly when `quality` is [`HrvQuality::Ok`], and then have scale 3.
#[derive(Debug, Clone, PartialEq)]
pub struct HrvWindow {
    /// Patient the beats belong to (also the Kafka key).
    pub patient_id: String,
    /// Window start, inclusive, ms since the epoch (a multiple of the window length).
    pub window_start_ms: i64,
    /// Window end, exclusive, ms since the epoch.
    pub window_end_ms: i64,
    /// Artifact filter the metrics were computed with.
    pub artifact_filter: ArtifactFilter,
    /// Whether enough clean data was present for metrics.
    pub quality: HrvQuality,
    /// Accepted NN intervals in the window.
    pub n_beats: u32,
    /// RR intervals of the window rejected by the artifact filter (including
    /// impossible values and duplicate beat times).
    pub n_rejected: u32,
    /// Beats of this patient that arrived after their own window had closed
    /// and were therefore excluded, counted since the previous window emitted
    /// for this patient. They cannot be added to a window already published,
    /// so they are reported on the next one instead of being silently lost.
    pub n_late: u32,
    /// Mean NN interval, ms.
    pub mean_nn_ms: Option<Decimal>,
    /// Sample standard deviation (n − 1) of the NN intervals, ms.
    pub sdnn_ms: Option<Decimal>,
    /// Root mean square of successive differences, ms.
    pub rmssd_ms: Option<Decimal>,
    /// Successive differences above 50 ms, percent of all successive differences.
    pub pnn50_pct: Option<Decimal>,
    /// 60 000 / mean NN, beats per minute.
    pub mean_hr_bpm: Option<Decimal>,
    /// Ids of the readings that contributed beats to the window, sorted, unique.
    pub reading_ids: Vec<String>,
}

/// HRV window quality (Avro enum `HrvQuality`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HrvQuality {
    /// Metrics computed.
    Ok,
    /// Under the minimum accepted NN duration (default 2 minutes), or fewer
    /// than two accepted beats or no successive difference: no metrics.
    Insufficient,
}

impl HrvQuality {
    /// Avro enum symbol.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "OK",
            Self::Insufficient => "INSUFFICIENT",
        }
    }

    /// Metric label value and summary name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Insufficient => "insufficient",
        }
    }
}

/// RR artifact filter applied before the metrics (DESIGN.md §4).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactFilter {
    /// Range 300–2000 ms, then the Malik 20 % rule against the last accepted beat.
    #[default]
    Malik,
    /// No filtering: every positive RR interval is an NN interval.
    None,
}

impl ArtifactFilter {
    /// Stable wire name (`artifact_filter` field, config value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malik => "malik",
            Self::None => "none",
        }
    }

    /// Parses a wire name.
    pub fn from_wire(name: &str) -> Option<Self> {
        [Self::Malik, Self::None]
            .into_iter()
            .find(|f| f.as_str() == name)
    }
}
