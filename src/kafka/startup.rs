//! Start-up: wait for a Kafka broker to answer before anything else.
//!
//! Without this step a missing broker shows up late and in disguise (the
//! profile loader giving up on a "missing" patients topic). Here the
//! bootstrap servers are asked for metadata until one answers, with a
//! warning per failed attempt naming them, for at most
//! `kafka.startup_timeout_ms` (0: for ever, e.g. under a supervisor that
//! should not restart-loop while Kafka comes up); then the run stops with
//! [`BrokersUnreachable`] and its own exit code.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use thiserror::Error;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::client::startup_check_config;
use crate::config::KafkaConfig;

/// No broker answered within `kafka.startup_timeout_ms`.
#[derive(Debug, Error)]
#[error(
    "no Kafka broker reachable at {brokers} within {waited_ms} ms (last error: {last_error}); \
     check kafka.brokers and the network, or raise kafka.startup_timeout_ms (0 waits for ever)"
)]
pub struct BrokersUnreachable {
    /// The bootstrap servers tried.
    pub brokers: String,
    /// How long it waited.
    pub waited_ms: u64,
    /// The last attempt's error.
    pub last_error: String,
}

/// Longest single metadata request.
const ATTEMPT: Duration = Duration::from_secs(5);
/// Pause between attempts.
const PAUSE: Duration = Duration::from_secs(1);

/// Context that keeps librdkafka's connection errors at debug level: the
/// wait reports each failed attempt itself, with the last reason kept here
/// (a metadata request only says "broker transport failure"; the reason
/// says why, e.g. that TLS certificate verification failed).
#[derive(Default)]
struct QuietContext {
    last_reason: Mutex<Option<String>>,
}

impl ClientContext for QuietContext {
    fn error(&self, error: KafkaError, reason: &str) {
        debug!(%error, reason, "start-up broker check");
        self.keep(reason);
    }

    // Connection failures arrive here, from librdkafka's own threads (the
    // error callback only runs when the client is polled, which a metadata
    // request does not do).
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        debug!(?level, fac, log_message, "start-up broker check");
        if (level as i32) <= (RDKafkaLogLevel::Warning as i32) {
            self.keep(log_message);
        }
    }
}

impl QuietContext {
    fn keep(&self, reason: &str) {
        *self
            .last_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(reason.to_owned());
    }

    /// `error`, with the connection's last reason and, when TLS failed, the
    /// settings to check.
    fn explain(&self, error: &KafkaError) -> String {
        let reason = self
            .last_reason
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match reason {
            Some(r) if r.contains("SSL") => format!(
                "{error}: {r}; the TLS connection failed: check kafka.security.ssl_ca_location \
                 (the CA that signed the broker's certificate) and ssl_endpoint_identification"
            ),
            Some(r) => format!("{error}: {r}"),
            None => error.to_string(),
        }
    }
}

impl ConsumerContext for QuietContext {}

/// Waits until a bootstrap server answers a metadata request. `Ok(false)`
/// when `shutdown` came first.
///
/// # Errors
/// [`BrokersUnreachable`] once `cfg.startup_timeout_ms` (non-zero) passed
/// without an answer; a client that cannot even be created is reported the
/// same way, with its error.
pub async fn wait_for_brokers(
    cfg: &KafkaConfig,
    mut shutdown: impl std::future::Future<Output = ()> + Unpin,
) -> Result<bool, BrokersUnreachable> {
    let started = Instant::now();
    let limit = (cfg.startup_timeout_ms > 0).then(|| Duration::from_millis(cfg.startup_timeout_ms));
    let unreachable = |last_error: String| BrokersUnreachable {
        brokers: cfg.brokers.clone(),
        waited_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        last_error,
    };
    let client: Arc<BaseConsumer<QuietContext>> = Arc::new(
        startup_check_config(cfg)
            .create_with_context(QuietContext::default())
            .map_err(|e| unreachable(e.to_string()))?,
    );
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let remaining = limit.map(|l| l.saturating_sub(started.elapsed()));
        let wait = remaining.map_or(ATTEMPT, |r| r.min(ATTEMPT).max(Duration::from_millis(100)));
        let c = client.clone();
        let fetch = tokio::task::spawn_blocking(move || {
            let result = c.fetch_metadata(None, wait).map(|md| md.brokers().len());
            if result.is_err() {
                // Serve the queued log and error events, so the context
                // learns why (librdkafka queues them for the next poll).
                let _ = c.poll(Duration::ZERO);
            }
            result
        });
        let result = tokio::select! {
            () = &mut shutdown => return Ok(false),
            r = fetch => r.unwrap_or(Err(KafkaError::Canceled)),
        };
        let error = match result {
            Ok(brokers) => {
                info!(
                    bootstrap = %cfg.brokers,
                    brokers,
                    waited_s = started.elapsed().as_secs_f64(),
                    "Kafka brokers reachable"
                );
                return Ok(true);
            }
            Err(e) => client.context().explain(&e),
        };
        if limit.is_some_and(|l| started.elapsed() + PAUSE >= l) {
            return Err(unreachable(error));
        }
        warn!(
            brokers = %cfg.brokers,
            attempt,
            waited_s = started.elapsed().as_secs(),
            timeout_ms = cfg.startup_timeout_ms,
            %error,
            "no Kafka broker reachable at start-up; retrying"
        );
        tokio::select! {
            () = &mut shutdown => return Ok(false),
            () = tokio::time::sleep(PAUSE) => {}
        }
    }
}
