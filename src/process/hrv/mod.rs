//! HRV over per-patient event-time tumbling windows (DESIGN.md §4).
//!
//! [`HrvWindows`] owns the window state of one input partition. The pipeline
//! feeds it every accepted `HeartRhythm` reading and publishes the
//! [`HrvWindow`](crate::model::HrvWindow)s it returns on `vitals.hrv.windows`.
//! Pure and synchronous: the caller owns the clock (event time only) and the
//! output.
//!
//! * [`config`]: window length, lateness, filter, minimum NN duration.
//! * [`filter`]: artifact filter and running sums over one window's beats.
//! * [`metrics`]: time-domain metrics from those sums.
//! * [`open_window`]: an open window's beats and readings, compact.
//! * [`windows`]: beat routing, watermark, closing, late accounting.

mod beat_codec;
mod config;
mod filter;
mod metrics;
mod open_window;
mod windows;

#[cfg(test)]
mod reference_tests;
#[cfg(test)]
mod windows_tests;

pub use config::{HrvConfig, HrvConfigError};
pub use open_window::{ChunkRef, OpenWindow, WindowChunk};
pub use windows::{AddOutcome, EventMarks, HrvMeta, HrvPatientState, HrvWindows};
