//! Stops a flood of bad input from silently draining into the DLQ.

use std::collections::VecDeque;

use thiserror::Error;

/// The invalid share of recent readings went above the configured limit.
#[derive(Debug, Error, Clone, PartialEq)]
#[error(
    "{invalid} of the last {window} readings were invalid (limit {limit:.0}%): \
     stopping so a broken producer does not drain into the DLQ; inspect the DLQ, \
     fix the source, or raise validation.max_invalid_ratio"
)]
pub struct InvalidRatioExceeded {
    /// Invalid readings in the window.
    pub invalid: usize,
    /// Window length.
    pub window: usize,
    /// Limit in percent.
    pub limit: f64,
}

/// Sliding window over the last `window` readings' validity.
#[derive(Debug, Clone)]
pub struct InvalidRatioGuard {
    recent: VecDeque<bool>,
    invalid: usize,
    window: usize,
    max_ratio: f64,
}

impl InvalidRatioGuard {
    /// A guard over `window` readings allowing at most `max_ratio` invalid.
    pub fn new(window: usize, max_ratio: f64) -> Self {
        Self {
            recent: VecDeque::with_capacity(window),
            invalid: 0,
            window: window.max(1),
            max_ratio,
        }
    }

    /// Records one reading. The limit applies once the window is full, so a
    /// few bad readings at start-up do not stop the consumer.
    ///
    /// # Errors
    /// [`InvalidRatioExceeded`] when the invalid share exceeds the limit.
    pub fn record(&mut self, invalid: bool) -> Result<(), InvalidRatioExceeded> {
        if self.recent.len() == self.window && self.recent.pop_front() == Some(true) {
            self.invalid -= 1;
        }
        self.recent.push_back(invalid);
        self.invalid += usize::from(invalid);
        let full = self.recent.len() == self.window;
        // Ratio of counts bounded by the window; precision loss is irrelevant here.
        #[allow(clippy::cast_precision_loss)]
        let ratio = self.invalid as f64 / self.window as f64;
        if full && ratio > self.max_ratio {
            return Err(InvalidRatioExceeded {
                invalid: self.invalid,
                window: self.window,
                limit: self.max_ratio * 100.0,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_only_above_the_ratio_once_the_window_is_full() {
        let mut g = InvalidRatioGuard::new(10, 0.5);
        for _ in 0..9 {
            g.record(true).expect("window not yet full");
        }
        assert!(g.record(true).is_err());

        let mut g = InvalidRatioGuard::new(10, 0.5);
        for i in 0..100 {
            g.record(i % 2 == 0)
                .expect("exactly half is within the limit");
        }
    }

    #[test]
    fn old_invalid_readings_leave_the_window() {
        let mut g = InvalidRatioGuard::new(4, 0.5);
        for v in [true, true, false, false, false, false, true, true] {
            g.record(v).expect("never above half");
        }
        assert!(g.record(true).is_err(), "three of the last four");
    }
}
