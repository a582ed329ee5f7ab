//! Delivery acknowledgements of the pipeline's producer, counted per batch.
//!
//! Every record the pipeline produces carries a [`Deliveries`] handle (an
//! `Arc`, librdkafka's delivery opaque) shared by all records of its batch
//! (or of the changelog write that follows it). The producer's delivery
//! callback decrements its count and keeps the first error; the batch is
//! acknowledged when the count reaches zero, or failed as soon as one of
//! its records fails. This replaces a future (a oneshot channel) per record,
//! polled through a `FuturesUnordered`: about 9 % of the process's CPU in a
//! catch-up profile (BENCHMARKS.md, issue 16).
//!
//! The callback also wakes a sender waiting for room in a full producer
//! queue ([`QueueSpace`]): a delivered record is what frees room.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rdkafka::error::KafkaError;
use tokio::sync::Notify;

/// Outstanding deliveries of one batch's records.
#[derive(Debug, Default)]
pub struct Deliveries {
    /// Records enqueued and not yet acknowledged or failed.
    pending: AtomicUsize,
    /// Records ever enqueued.
    sent: AtomicUsize,
    /// The first delivery failure.
    failed: OnceLock<KafkaError>,
    /// Notified when `pending` reaches zero or a record fails.
    settled: Notify,
}

impl Deliveries {
    /// Counts a record about to be enqueued. Called before the send: the
    /// delivery callback may run on the producer's thread before the send
    /// call returns.
    pub fn enqueuing(&self) {
        self.pending.fetch_add(1, Ordering::AcqRel);
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes back [`Self::enqueuing`] for a record librdkafka refused.
    pub fn refused(&self) {
        self.sent.fetch_sub(1, Ordering::Relaxed);
        self.settle_one();
    }

    /// The delivery callback's report for one record.
    pub fn delivered(&self, result: Result<(), KafkaError>) {
        if let Err(e) = result
            && self.failed.set(e).is_ok()
        {
            // The batch fails now, not once its other records settle.
            self.settled.notify_one();
        }
        self.settle_one();
    }

    fn settle_one(&self) {
        if self.pending.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.settled.notify_one();
        }
    }

    /// How many records were enqueued under this handle.
    pub fn sent(&self) -> usize {
        self.sent.load(Ordering::Relaxed)
    }

    /// How many of them await acknowledgement.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }

    /// Waits until every record enqueued so far is acknowledged, or one
    /// failed. Cancel-safe.
    ///
    /// # Errors
    /// The first delivery failure (after `message.timeout.ms` at most).
    pub async fn wait(&self) -> Result<(), KafkaError> {
        loop {
            // `notify_one` leaves a permit when nobody waits, so a
            // settlement between this check and the await is not lost.
            if let Some(e) = self.failed.get() {
                return Err(e.clone());
            }
            if self.pending() == 0 {
                return Ok(());
            }
            self.settled.notified().await;
        }
    }
}

/// Wakes a sender waiting for room in a full producer queue.
#[derive(Debug, Default)]
pub struct QueueSpace {
    wanted: AtomicBool,
    freed: Notify,
}

impl QueueSpace {
    /// A record left the queue (called by the delivery callback).
    pub fn freed(&self) {
        // Only when someone waits: the common path costs one load.
        if self.wanted.load(Ordering::Acquire) && self.wanted.swap(false, Ordering::AcqRel) {
            self.freed.notify_one();
        }
    }

    /// Announces a wait, before the send is retried, so a delivery between
    /// the retry and [`Self::wait`] is not missed.
    pub fn want(&self) {
        self.wanted.store(true, Ordering::Release);
    }

    /// Waits until a record leaves the queue after [`Self::want`], or
    /// `fallback` passes (librdkafka frees the slot just after the
    /// callback, so a retry right after a wake-up can still find the queue
    /// full; the caller then waits again).
    pub async fn wait(&self, fallback: std::time::Duration) {
        let _ = tokio::time::timeout(fallback, self.freed.notified()).await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use rdkafka::error::RDKafkaErrorCode;

    use super::*;

    #[tokio::test]
    async fn a_batch_is_acknowledged_when_its_last_record_is() {
        let d = Arc::new(Deliveries::default());
        for _ in 0..3 {
            d.enqueuing();
        }
        d.delivered(Ok(()));
        d.delivered(Ok(()));
        let waiting = tokio::spawn({
            let d = d.clone();
            async move { d.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished(), "one record still in flight");
        d.delivered(Ok(()));
        let acked = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("joined");
        assert!(acked.is_ok());
        assert_eq!((d.sent(), d.pending()), (3, 0));
    }

    #[tokio::test]
    async fn the_first_failure_fails_the_batch_at_once() {
        let d = Deliveries::default();
        for _ in 0..3 {
            d.enqueuing();
        }
        let timed_out = KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut);
        d.delivered(Err(timed_out.clone()));
        d.delivered(Err(KafkaError::MessageProduction(
            RDKafkaErrorCode::BrokerTransportFailure,
        )));
        // One record is still in flight, the batch has failed already.
        let result = tokio::time::timeout(Duration::from_secs(5), d.wait())
            .await
            .expect("not waiting for the last record");
        assert_eq!(result, Err(timed_out));
    }

    #[tokio::test]
    async fn a_refused_record_is_not_awaited() {
        let d = Deliveries::default();
        d.enqueuing();
        d.refused();
        assert_eq!((d.sent(), d.pending()), (0, 0));
        assert!(d.wait().await.is_ok());
    }

    #[tokio::test]
    async fn records_enqueued_after_a_wake_up_are_awaited_too() {
        let d = Arc::new(Deliveries::default());
        d.enqueuing();
        d.delivered(Ok(())); // leaves a permit
        d.enqueuing();
        let waiting = tokio::spawn({
            let d = d.clone();
            async move { d.wait().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiting.is_finished());
        d.delivered(Ok(()));
        assert!(
            tokio::time::timeout(Duration::from_secs(5), waiting)
                .await
                .expect("woken")
                .expect("joined")
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_freed_slot_wakes_a_waiting_sender() {
        let space = Arc::new(QueueSpace::default());
        space.want();
        let waiting = tokio::spawn({
            let space = space.clone();
            async move {
                let started = std::time::Instant::now();
                space.wait(Duration::from_secs(30)).await;
                started.elapsed()
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        space.freed();
        let waited = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("joined");
        assert!(waited < Duration::from_secs(30));
    }
}
