//! Backpressure between the consumer and the producer: records wait for
//! room in the producer queue, and consumption pauses once
//! `processing.max_in_flight` outputs await the broker's acknowledgement,
//! so memory stays bounded however large the input backlog. The batch loop
//! then awaits the oldest deliveries (no polling) until half have drained.

use std::time::Duration;

use futures::future::try_join_all;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureRecord, Producer};
use tokio::time::Instant;
use tracing::debug;

use super::PipelineError;
use crate::kafka::{PipelineContext, PipelineProducer};
use crate::telemetry::{Metrics, Stats};

/// Enqueues `record`, waiting for queue space when the producer queue is full
/// (backpressure instead of unbounded memory).
pub(super) async fn send(
    producer: &PipelineProducer,
    mut record: FutureRecord<'_, [u8], [u8]>,
) -> Result<DeliveryFuture, PipelineError> {
    loop {
        match producer.send_result(record) {
            Ok(fut) => return Ok(fut),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err((e, _)) => return Err(PipelineError::Delivery(e)),
        }
    }
}

/// Waits until every delivery is acknowledged; the first failure is the error.
pub(super) async fn delivered(deliveries: Vec<DeliveryFuture>) -> Result<(), PipelineError> {
    try_join_all(deliveries.into_iter().map(|f| async move {
        match f.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((e, _))) => Err(PipelineError::Delivery(e)),
            Err(_) => Err(PipelineError::Delivery(KafkaError::Canceled)),
        }
    }))
    .await
    .map(|_| ())
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

    /// Whether `processing.max_in_flight` outputs await acknowledgement.
    pub(super) fn over(&self) -> bool {
        self.producer.in_flight_count() >= self.high
    }

    /// Whether at most half of `processing.max_in_flight` remain.
    pub(super) fn drained(&self) -> bool {
        self.producer.in_flight_count() <= self.high / 2
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
