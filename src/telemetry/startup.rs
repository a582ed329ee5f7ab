//! [`StartupTimeline`]: when each start-up phase of a run ended, so the
//! time from process start to `/readyz` 200 can be broken down (broker
//! wait, profile table, transactional producer, group join, state restore)
//! rather than guessed.
//!
//! Each phase is logged once, at info, on one line with the seconds since
//! the run started (`at_s`) and, where it has one, its own length
//! (`took_s`), and exported as `vitalstream_startup_seconds{phase}`
//! (seconds since the start when the phase ended). Phases overlap: the
//! group join runs while the profile table loads. Only the first start-up
//! is recorded; later rebalances are the restore histogram's.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tracing::info;

use super::names::STARTUP_PHASE;

/// A start-up phase, in the order they usually end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupPhase {
    /// A Kafka broker answered.
    Brokers,
    /// The pipeline consumer subscribed (the group join starts).
    Subscribed,
    /// The transactional producer fenced its predecessor (exactly_once).
    Producer,
    /// The patient profile table caught up with its topic.
    Profiles,
    /// The first partition assignment arrived (the group join ended).
    Assigned,
    /// The state of the first assignment was restored: ready.
    Ready,
}

impl StartupPhase {
    /// The `phase` label and log field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Brokers => "brokers",
            Self::Subscribed => "subscribed",
            Self::Producer => "producer",
            Self::Profiles => "profiles",
            Self::Assigned => "assigned",
            Self::Ready => "ready",
        }
    }
}

/// When the run started and which phases have ended.
#[derive(Debug)]
pub struct StartupTimeline {
    started: Instant,
    ended: Mutex<Vec<(StartupPhase, f64)>>,
    ready: AtomicBool,
}

impl Default for StartupTimeline {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            ended: Mutex::new(Vec::new()),
            ready: AtomicBool::new(false),
        }
    }
}

impl StartupTimeline {
    /// Seconds since the run started.
    pub fn elapsed_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Records that `phase` ended now, once (later calls are ignored), and
    /// logs it; `took_s` is the phase's own length where it has one.
    pub fn end(&self, phase: StartupPhase, took_s: Option<f64>) {
        let at_s = self.elapsed_s();
        {
            let Ok(mut ended) = self.ended.lock() else {
                return;
            };
            if ended.iter().any(|(p, _)| *p == phase) {
                return;
            }
            ended.push((phase, at_s));
        }
        metrics::gauge!(STARTUP_PHASE, "phase" => phase.as_str()).set(at_s);
        match took_s {
            Some(took_s) => info!(phase = phase.as_str(), at_s, took_s, "start-up phase done"),
            None => info!(phase = phase.as_str(), at_s, "start-up phase done"),
        }
    }

    /// Whether [`StartupPhase::Ready`] has ended.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The first assignment is restored: logs `Ready` and, on one line,
    /// when each phase ended.
    pub fn ready(&self, restore_s: f64) {
        if self.ready.swap(true, Ordering::AcqRel) {
            return;
        }
        self.end(StartupPhase::Ready, Some(restore_s));
        let at = |phase: StartupPhase| {
            self.ended
                .lock()
                .ok()
                .and_then(|e| e.iter().find(|(p, _)| *p == phase).map(|(_, s)| *s))
                .unwrap_or(f64::NAN)
        };
        info!(
            ready_s = at(StartupPhase::Ready),
            brokers_s = at(StartupPhase::Brokers),
            profiles_s = at(StartupPhase::Profiles),
            producer_s = at(StartupPhase::Producer),
            subscribed_s = at(StartupPhase::Subscribed),
            assigned_s = at(StartupPhase::Assigned),
            restore_s,
            "start-up complete: ready (seconds since start when each phase ended)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_is_recorded_once_and_ready_once() {
        let t = StartupTimeline::default();
        t.end(StartupPhase::Brokers, None);
        let first = t.ended.lock().expect("lock")[0].1;
        t.end(StartupPhase::Brokers, None);
        assert_eq!(t.ended.lock().expect("lock").len(), 1);
        assert_eq!(t.ended.lock().expect("lock")[0].1, first);
        assert!(!t.is_ready());
        t.ready(0.5);
        t.ready(0.7);
        assert!(t.is_ready());
        let ended = t.ended.lock().expect("lock").clone();
        assert_eq!(ended.len(), 2);
        assert_eq!(ended[1].0, StartupPhase::Ready);
    }
}
