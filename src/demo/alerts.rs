//! Follows `vitals.alerts` during a demo run as a clinician dashboard
//! would: prints each alert as it arrives and keeps them for the summary.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::codec::Codec;
use crate::config::KafkaConfig;
use crate::kafka::client_config;
use crate::model::ClinicianAlert;

/// A running alerts follower.
pub struct AlertWatcher {
    seen: Arc<Mutex<Vec<ClinicianAlert>>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl AlertWatcher {
    /// Starts following `topic` from its beginning (committed records only).
    ///
    /// # Errors
    /// The consumer cannot be created or subscribed.
    pub fn start(kafka: &KafkaConfig, topic: &str, codec: Codec) -> anyhow::Result<Self> {
        let consumer: StreamConsumer = client_config(kafka)
            .set(
                "group.id",
                format!("vitalstream-demo-alerts-{}", crate::clock::now_ms()),
            )
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("session.timeout.ms", "6000")
            .create()?;
        consumer.subscribe(&[topic])?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let msg = consumer.recv().await?;
                let Some(payload) = msg.payload() else {
                    continue;
                };
                match codec.decode_alert(payload) {
                    Ok(alert) => {
                        println!(
                            "  ALERT {:<8} {:<20} {:<28} observed {} {} (threshold {})",
                            alert.severity.label(),
                            alert.rule.as_str(),
                            alert.patient_id,
                            alert.observed.normalize(),
                            alert.unit,
                            alert.threshold.normalize()
                        );
                        sink.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(alert);
                    }
                    Err(e) => println!("  alerts topic: undecodable record: {e}"),
                }
            }
        });
        Ok(Self { seen, task })
    }

    /// Waits until `expected` alerts arrived (or `timeout` passes), stops
    /// following and returns them.
    pub async fn finish(self, expected: u64, timeout: Duration) -> Vec<ClinicianAlert> {
        let deadline = Instant::now() + timeout;
        loop {
            let n = self
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len();
            if n as u64 >= expected || Instant::now() >= deadline || self.task.is_finished() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.task.abort();
        // Wait for the consumer to be dropped while the broker is still up.
        let _ = self.task.await;
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
