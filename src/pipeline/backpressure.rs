//! Backpressure between the consumer and the producer: records wait for
//! room in the producer queue, and consumption pauses once
//! `processing.max_in_flight` outputs await the broker's acknowledgement,
//! so memory stays bounded however large the input backlog. The batch loop
//! then awaits the oldest batches' deliveries (no polling) until half
//! have drained.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, Producer};
use tokio::time::Instant;
use tracing::debug;

use super::PipelineError;
use crate::kafka::{Deliveries, PipelineContext, PipelineProducer};
use crate::telemetry::{Metrics, Stats};

/// A record to produce, acknowledged through its batch's [`Deliveries`].
pub(super) type OutRecord<'a> = BaseRecord<'a, [u8], [u8], Arc<Deliveries>>;

/// The longest a sender waits for a delivery to free room in a full
/// producer queue before trying again.
const QUEUE_FULL_RETRY: Duration = Duration::from_millis(5);

/// Enqueues `record`, counted in its [`Deliveries`], waiting for queue
/// space when the producer queue is full (backpressure instead of
/// unbounded memory): the delivery callback wakes the wait.
pub(super) async fn send(
    producer: &PipelineProducer,
    mut record: OutRecord<'_>,
) -> Result<(), PipelineError> {
    record.delivery_opaque.enqueuing();
    let space = producer.context().queue_space();
    let mut announced = false;
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                if announced {
                    space.wait(QUEUE_FULL_RETRY).await;
                    announced = false;
                } else {
                    // Announce the wait, then try once more: a delivery
                    // in between then wakes the wait instead of being missed.
                    space.want();
                    announced = true;
                }
            }
            Err((e, back)) => {
                back.delivery_opaque.refused();
                return Err(PipelineError::Delivery(e));
            }
        }
    }
}

/// Waits until every record of `deliveries` is acknowledged; the first
/// failure is the error.
pub(super) async fn delivered(deliveries: &Deliveries) -> Result<(), PipelineError> {
    deliveries.wait().await.map_err(PipelineError::Delivery)
}

/// Pauses consumption while the producer has too many outputs in flight.
pub(super) struct Backpressure {
    producer: PipelineProducer,
    /// `processing.max_in_flight`: consumption pauses at this many.
    high: i32,
    metrics: Metrics,
}

/// Partitions paused by [`Backpressure::pause`].
pub(super) struct Paused {
    assignment: rdkafka::TopicPartitionList,
    started: Instant,
}

impl Backpressure {
    pub(super) fn new(producer: PipelineProducer, max_in_flight: usize, metrics: Metrics) -> Self {
        Self {
            producer,
            high: i32::try_from(max_in_flight).unwrap_or(i32::MAX),
            metrics,
        }
    }

    /// Whether `processing.max_in_flight` outputs await acknowledgement,
    /// counting the `held` ones (exactly_once, held during a commit).
    pub(super) fn over(&self, held: usize) -> bool {
        self.in_flight(held) >= self.high
    }

    /// Whether at most half of `processing.max_in_flight` remain.
    pub(super) fn drained(&self, held: usize) -> bool {
        self.in_flight(held) <= self.high / 2
    }

    fn in_flight(&self, held: usize) -> i32 {
        let held = i32::try_from(held).unwrap_or(i32::MAX);
        self.producer.in_flight_count().saturating_add(held)
    }

    /// Pauses every assigned partition. librdkafka drops what it had
    /// prefetched and fetches again from the next unconsumed offset on
    /// resume, so memory stays bounded however large the input backlog.
    pub(super) fn pause(
        &self,
        consumer: &StreamConsumer<PipelineContext>,
    ) -> Result<Paused, PipelineError> {
        let assignment = consumer.assignment().map_err(PipelineError::Consume)?;
        consumer
            .pause(&assignment)
            .map_err(PipelineError::Consume)?;
        debug!(
            in_flight = self.producer.in_flight_count(),
            "producer queue full: consumption paused"
        );
        Ok(Paused {
            assignment,
            started: Instant::now(),
        })
    }

    /// Resumes what [`Self::pause`] paused.
    pub(super) fn resume(
        &self,
        consumer: &StreamConsumer<PipelineContext>,
        paused: Paused,
        stats: &Stats,
    ) -> Result<(), PipelineError> {
        consumer
            .resume(&paused.assignment)
            .map_err(PipelineError::Consume)?;
        let seconds = paused.started.elapsed().as_secs_f64();
        self.metrics.backpressure_pause(stats, seconds);
        debug!(seconds, "producer queue drained: consumption resumed");
        Ok(())
    }
}
