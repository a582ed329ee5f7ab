//! Whether the Kafka brokers can be reached, as the pipeline's consumer and
//! producer see them, reported in logs, metrics and readiness.
//!
//! librdkafka reconnects by itself, so an outage is not an error of the
//! run: the pipeline keeps its state and its open work, and goes on once a
//! broker answers. What it must do is say so. A client that loses every
//! broker connection reports `AllBrokersDown` through its error callback:
//! that starts an outage (a warning naming the bootstrap servers,
//! `vitalstream_kafka_outages_total`, `vitalstream_kafka_connected` 0,
//! `/readyz` not ready). There is no callback for the way back, so the
//! statistics every client emits (`statistics.interval.ms`: 1 s for the
//! producer, 5 s for the consumer) end it: the first report with a broker
//! in state `UP` logs the recovery and restores the gauge and readiness.
//! Consumer and producer are tracked separately (the consumer's callbacks
//! run only while the pipeline polls it, so they can arrive late; the
//! producer's run on its own thread); the outage lasts while either is cut
//! off, so a late report of the consumer's never ends one early. Nor does
//! one start one late: the consumer's events queue up while the pipeline
//! waits on a commit, and arrive in a burst after the network is back, so
//! its `AllBrokersDown` is believed only when the producer has not seen a
//! broker up within [`FRESH`] (the producer reports every outage itself).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metrics::{Counter, Gauge};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Statistics};
use tracing::{debug, info, warn};

use super::delivery::{Deliveries, QueueSpace};
use crate::telemetry::{KAFKA_CLIENT_ERRORS, KAFKA_CONNECTED, KAFKA_OUTAGES, Stats};

/// How recent a producer statistics report with a broker up must be to
/// overrule the consumer's `AllBrokersDown` (the producer reports every 1 s).
const FRESH: Duration = Duration::from_millis(2_500);

/// Which of the pipeline's clients reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkClient {
    /// The raw-topic consumer.
    Consumer = 0,
    /// The output (transactional) producer.
    Producer = 1,
}

impl LinkClient {
    fn as_str(self) -> &'static str {
        match self {
            Self::Consumer => "consumer",
            Self::Producer => "producer",
        }
    }
}

/// Outage tracking shared by the pipeline's consumer and producer contexts.
#[derive(Debug)]
pub struct BrokerLink {
    brokers: String,
    stats: Arc<Stats>,
    /// Per client: when it lost every broker, while it has not got one back.
    down_since: Mutex<[Option<Instant>; 2]>,
    /// When the producer's statistics last showed a broker up.
    producer_saw_up: Mutex<Option<Instant>>,
    outages: Counter,
    connected: Gauge,
    errors: [Counter; 2],
}

impl BrokerLink {
    /// A link to `brokers` (the bootstrap servers, for the logs), connected.
    pub fn new(brokers: &str, stats: Arc<Stats>) -> Self {
        let connected = metrics::gauge!(KAFKA_CONNECTED);
        connected.set(1.0);
        Self {
            brokers: brokers.to_owned(),
            stats,
            down_since: Mutex::new([None, None]),
            producer_saw_up: Mutex::new(None),
            outages: metrics::counter!(KAFKA_OUTAGES),
            connected,
            errors: [LinkClient::Consumer, LinkClient::Producer]
                .map(|c| metrics::counter!(KAFKA_CLIENT_ERRORS, "client" => c.as_str())),
        }
    }

    /// An error reported by `client`'s error callback.
    pub fn client_error(&self, client: LinkClient, error: &KafkaError) {
        self.errors[client as usize].increment(1);
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.all_brokers_down(client);
        }
    }

    /// A statistics report of `client`: a broker in state `UP` ends its outage.
    pub fn statistics(&self, client: LinkClient, statistics: &Statistics) {
        if statistics.brokers.values().any(|b| b.state == "UP") {
            if client == LinkClient::Producer
                && let Ok(mut at) = self.producer_saw_up.lock()
            {
                *at = Some(Instant::now());
            }
            self.broker_up(client);
        }
    }

    /// Whether an outage is going on.
    pub fn is_down(&self) -> bool {
        self.down_since
            .lock()
            .map(|d| d.iter().any(Option::is_some))
            .unwrap_or(false)
    }

    fn all_brokers_down(&self, client: LinkClient) {
        let contradicted = client == LinkClient::Consumer
            && self
                .producer_saw_up
                .lock()
                .is_ok_and(|at| at.is_some_and(|t| t.elapsed() < FRESH));
        if contradicted {
            debug!(
                "consumer reports every broker down, the producer saw one up just now: a late report"
            );
            return;
        }
        let Ok(mut down) = self.down_since.lock() else {
            return;
        };
        let outage_began = down.iter().all(Option::is_none);
        down[client as usize].get_or_insert_with(Instant::now);
        if outage_began {
            self.outages.increment(1);
            self.connected.set(0.0);
            self.stats.health.set_kafka_reachable(false);
            warn!(
                brokers = %self.brokers,
                client = client.as_str(),
                "all Kafka brokers unreachable: consuming, publishing and committing wait until \
                 one answers again (librdkafka keeps reconnecting); not ready meanwhile"
            );
        }
    }

    fn broker_up(&self, client: LinkClient) {
        let Ok(mut down) = self.down_since.lock() else {
            return;
        };
        let Some(since) = down[client as usize].take() else {
            return;
        };
        if down.iter().all(Option::is_none) {
            self.connected.set(1.0);
            self.stats.health.set_kafka_reachable(true);
            info!(
                brokers = %self.brokers,
                client = client.as_str(),
                outage_s = since.elapsed().as_secs_f64(),
                "Kafka brokers reachable again; the pipeline resumes"
            );
        }
    }
}

/// Whether a consumer error is librdkafka reporting a transient condition
/// (a broker connection lost, a timeout, leadership moving) that it
/// recovers from by itself, as opposed to one that stops the run.
pub fn is_transient(error: &KafkaError) -> bool {
    use RDKafkaErrorCode as C;
    match error {
        KafkaError::MessageConsumptionFatal(_) => false,
        KafkaError::MessageConsumption(code) | KafkaError::Global(code) => matches!(
            code,
            C::BrokerTransportFailure
                | C::AllBrokersDown
                | C::Resolve
                | C::OperationTimedOut
                | C::RequestTimedOut
                | C::NetworkException
                | C::BrokerNotAvailable
                | C::LeaderNotAvailable
                | C::NotLeaderForPartition
                | C::NotCoordinator
                | C::CoordinatorNotAvailable
                | C::CoordinatorLoadInProgress
        ),
        _ => false,
    }
}

/// Context of the pipeline's producer: client errors and statistics go to
/// the [`BrokerLink`], delivery reports to the [`Deliveries`] of the
/// record's batch (its delivery opaque).
#[derive(Debug, Clone)]
pub struct LinkProducerContext {
    link: Arc<BrokerLink>,
    space: Arc<QueueSpace>,
}

impl LinkProducerContext {
    /// A producer context reporting to `link`.
    pub fn new(link: Arc<BrokerLink>) -> Self {
        Self {
            link,
            space: Arc::default(),
        }
    }

    /// Wakes senders waiting for room in the producer queue.
    pub fn queue_space(&self) -> &QueueSpace {
        &self.space
    }
}

impl ProducerContext for LinkProducerContext {
    type DeliveryOpaque = Arc<Deliveries>;

    fn delivery(&self, result: &DeliveryResult<'_>, deliveries: Arc<Deliveries>) {
        deliveries.delivered(result.as_ref().map(|_| ()).map_err(|(e, _)| e.clone()));
        self.space.freed();
    }
}

impl ClientContext for LinkProducerContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.link.client_error(LinkClient::Producer, &error);
        warn!(%error, reason, client = "producer", "kafka client error");
    }

    fn stats(&self, statistics: Statistics) {
        self.link.statistics(LinkClient::Producer, &statistics);
    }
}

/// The pipeline's output producer. Its own thread serves delivery reports
/// (as `FutureProducer`'s does), counted per batch by [`Deliveries`].
pub type PipelineProducer = ThreadedProducer<LinkProducerContext>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_lasts_until_every_client_that_lost_the_brokers_has_one_back() {
        let stats = Arc::new(Stats::default());
        let link = BrokerLink::new("127.0.0.1:9", stats.clone());
        let down = KafkaError::Global(RDKafkaErrorCode::AllBrokersDown);
        link.client_error(LinkClient::Producer, &down);
        link.client_error(LinkClient::Consumer, &down);
        assert!(link.is_down());
        assert_eq!(
            stats.health.readiness(),
            Err(crate::telemetry::NotReady::KafkaUnreachable)
        );
        link.broker_up(LinkClient::Producer);
        assert!(link.is_down(), "the consumer has no broker yet");
        link.broker_up(LinkClient::Consumer);
        assert!(!link.is_down());
        // A consumer report just after the producer saw a broker up is late.
        *link.producer_saw_up.lock().expect("lock") = Some(Instant::now());
        link.client_error(LinkClient::Consumer, &down);
        assert!(!link.is_down(), "a late consumer report starts no outage");
        // Other errors count but start no outage.
        link.client_error(
            LinkClient::Consumer,
            &KafkaError::Global(RDKafkaErrorCode::BrokerTransportFailure),
        );
        assert!(!link.is_down());
    }

    #[test]
    fn connection_trouble_is_transient_and_fatal_errors_are_not() {
        assert!(is_transient(&KafkaError::MessageConsumption(
            RDKafkaErrorCode::BrokerTransportFailure
        )));
        assert!(is_transient(&KafkaError::MessageConsumption(
            RDKafkaErrorCode::AllBrokersDown
        )));
        assert!(!is_transient(&KafkaError::MessageConsumptionFatal(
            RDKafkaErrorCode::BrokerTransportFailure
        )));
        assert!(!is_transient(&KafkaError::MessageConsumption(
            RDKafkaErrorCode::UnknownTopicOrPartition
        )));
    }
}
