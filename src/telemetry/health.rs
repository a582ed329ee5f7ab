//! [`Health`]: what `/healthz` and `/readyz` report, updated by the pipeline.
//!
//! Live: the pipeline loop has turned within the last `stall_after`
//! (a stuck loop fails the liveness probe and gets restarted).
//! Ready: the profile table has caught up, the consumer has received its
//! partition assignment, the state of every assigned partition is
//! restored, and the Kafka brokers are reachable (during an outage the
//! instance cannot consume, publish or commit, so it is taken out of
//! service until a broker answers again). Readiness is also exported as the
//! `vitalstream_ready` gauge.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use super::names::{ASSIGNED_PARTITIONS, READY};

/// Health flags shared between the pipeline and the HTTP endpoints.
#[derive(Debug, Default)]
pub struct Health {
    /// Wall clock (ms) of the last pipeline loop turn; 0 before the first.
    heartbeat_ms: AtomicI64,
    profiles_caught_up: AtomicBool,
    assigned: AtomicBool,
    assigned_partitions: AtomicU64,
    state_restored: AtomicBool,
    kafka_unreachable: AtomicBool,
    stopping: AtomicBool,
}

/// Why the instance is not ready, for the `/readyz` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// The patient profile table is still loading.
    ProfilesLoading,
    /// The consumer has not joined its group or received an assignment.
    NotAssigned,
    /// Partition state is being restored.
    Restoring,
    /// No Kafka broker can be reached (an outage).
    KafkaUnreachable,
    /// Shutting down.
    Stopping,
}

impl NotReady {
    /// A short reason for the probe body.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProfilesLoading => "patient profiles still loading",
            Self::NotAssigned => "no partition assignment yet",
            Self::Restoring => "restoring partition state",
            Self::KafkaUnreachable => "Kafka brokers unreachable",
            Self::Stopping => "shutting down",
        }
    }
}

impl Health {
    /// Records a turn of the pipeline loop at `now_ms`.
    pub fn beat(&self, now_ms: i64) {
        self.heartbeat_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Whether the loop turned within `stall_after_ms` of `now_ms`, or has
    /// not started yet (start-up is covered by the readiness probe).
    pub fn is_live(&self, now_ms: i64, stall_after_ms: i64) -> bool {
        let last = self.heartbeat_ms.load(Ordering::Relaxed);
        last == 0 || now_ms.saturating_sub(last) <= stall_after_ms
    }

    /// The profile table caught up with the patients topic.
    pub fn set_profiles_caught_up(&self) {
        self.profiles_caught_up.store(true, Ordering::Release);
        self.publish();
    }

    /// The consumer received an assignment of `partitions` partitions
    /// (possibly zero when the group has more members than partitions).
    pub fn set_assigned(&self, partitions: usize) {
        self.assigned_partitions
            .store(partitions as u64, Ordering::Relaxed);
        self.assigned.store(true, Ordering::Release);
        self.publish();
    }

    /// Partition state restore started (`false`) or finished (`true`).
    pub fn set_state_restored(&self, restored: bool) {
        self.state_restored.store(restored, Ordering::Release);
        self.publish();
    }

    /// Every Kafka broker became unreachable (`false`) or one answers
    /// again (`true`).
    pub fn set_kafka_reachable(&self, reachable: bool) {
        self.kafka_unreachable.store(!reachable, Ordering::Release);
        self.publish();
    }

    /// Shutdown began: stop receiving traffic.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Release);
        self.publish();
    }

    /// Partitions currently assigned.
    pub fn assigned_partitions(&self) -> u64 {
        self.assigned_partitions.load(Ordering::Relaxed)
    }

    /// `Ok` when ready, else the first reason it is not.
    ///
    /// # Errors
    /// [`NotReady`] naming what is missing.
    pub fn readiness(&self) -> Result<(), NotReady> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(NotReady::Stopping);
        }
        if self.kafka_unreachable.load(Ordering::Acquire) {
            return Err(NotReady::KafkaUnreachable);
        }
        if !self.profiles_caught_up.load(Ordering::Acquire) {
            return Err(NotReady::ProfilesLoading);
        }
        if !self.assigned.load(Ordering::Acquire) {
            return Err(NotReady::NotAssigned);
        }
        if !self.state_restored.load(Ordering::Acquire) {
            return Err(NotReady::Restoring);
        }
        Ok(())
    }

    fn publish(&self) {
        // Partition counts are far below f64's exact-integer range.
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!(ASSIGNED_PARTITIONS).set(self.assigned_partitions() as f64);
        metrics::gauge!(READY).set(if self.readiness().is_ok() { 1.0 } else { 0.0 });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_condition_holds() {
        let h = Health::default();
        assert_eq!(h.readiness(), Err(NotReady::ProfilesLoading));
        h.set_profiles_caught_up();
        assert_eq!(h.readiness(), Err(NotReady::NotAssigned));
        h.set_assigned(0);
        assert_eq!(h.readiness(), Err(NotReady::Restoring));
        h.set_state_restored(true);
        assert_eq!(h.readiness(), Ok(()));
        h.set_state_restored(false);
        assert_eq!(h.readiness(), Err(NotReady::Restoring));
        h.set_state_restored(true);
        h.set_kafka_reachable(false);
        assert_eq!(h.readiness(), Err(NotReady::KafkaUnreachable));
        h.set_kafka_reachable(true);
        assert_eq!(h.readiness(), Ok(()));
        h.set_stopping();
        assert_eq!(h.readiness(), Err(NotReady::Stopping));
    }

    #[test]
    fn a_stalled_loop_is_not_live() {
        let h = Health::default();
        assert!(
            h.is_live(1_000_000, 30_000),
            "not started yet counts as live"
        );
        h.beat(1_000_000);
        assert!(h.is_live(1_020_000, 30_000));
        assert!(!h.is_live(1_040_001, 30_000));
    }
}
