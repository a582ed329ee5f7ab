//! Consumer context: logs rebalances and hands revoked partitions to the
//! pipeline, which drops their state once in-flight work is delivered.

use std::sync::{Arc, Mutex};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};
use tracing::{info, warn};

/// Partition changes seen by the rebalance callbacks since the last drain.
#[derive(Debug, Default)]
pub struct RebalanceEvents {
    revoked: Mutex<Vec<i32>>,
}

impl RebalanceEvents {
    /// Takes the partitions revoked since the last call.
    pub fn take_revoked(&self) -> Vec<i32> {
        self.revoked
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// The pipeline's consumer context.
#[derive(Debug, Clone, Default)]
pub struct PipelineContext {
    /// Shared with the pipeline loop.
    pub events: Arc<RebalanceEvents>,
}

impl ClientContext for PipelineContext {
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        warn!(%error, reason, "kafka client error");
    }
}

impl ConsumerContext for PipelineContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                info!(?partitions, "partitions revoked");
                if let Ok(mut revoked) = self.events.revoked.lock() {
                    revoked.extend(partitions);
                }
            }
            Rebalance::Assign(tpl) => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                info!(?partitions, "partitions assigned");
            }
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }
}
