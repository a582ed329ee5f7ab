//! The processor's wall clock. One function so that the pipeline, the HTTP
//! liveness check and the simulated gateway read time the same way.

use std::time::{SystemTime, UNIX_EPOCH};

/// Processor wall clock, ms since the epoch (0 before 1970, saturating far
/// in the future).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::now_ms;

    #[test]
    fn the_clock_reads_milliseconds_since_the_epoch() {
        // 2020-01-01 in ms; any machine running this is past it.
        assert!(now_ms() > 1_577_836_800_000);
    }
}
