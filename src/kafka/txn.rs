//! Producer transactions for exactly-once processing: one batch's outputs,
//! state changelog records and input offsets commit or abort together.
//!
//! Errors are handled as librdkafka classifies them: retriable calls are
//! retried, abortable ones abort the transaction (the caller then rewinds to
//! the committed offsets and restores state), fatal ones (fencing by a newer
//! instance, an unrecoverable producer) stop the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;

use super::PipelineProducer;
use tracing::{debug, warn};

/// How a commit ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Outputs and offsets are visible to `read_committed` readers.
    Committed,
    /// Aborted: nothing of the transaction is visible; the caller must
    /// rewind to the committed offsets and restore state from the changelog.
    Aborted,
}

/// Transaction state of the pipeline's producer. Clones share it: the
/// rebalance callback holds one to abort the open transaction on revocation
/// (see `kafka::context`).
#[derive(Clone)]
pub struct Transactions {
    producer: PipelineProducer,
    timeout: Duration,
    open: Arc<AtomicBool>,
}

const RETRIES: u32 = 3;

impl Transactions {
    /// Initialises transactions (fencing any older instance with the same
    /// transactional id).
    ///
    /// # Errors
    /// The broker does not support transactions or cannot be reached in time.
    pub async fn init(producer: PipelineProducer, timeout: Duration) -> Result<Self, KafkaError> {
        let p = producer.clone();
        blocking(move || retry(|| p.init_transactions(timeout))).await?;
        Ok(Self {
            producer,
            timeout,
            open: Arc::default(),
        })
    }

    /// Begins a transaction unless one is open. Call before producing.
    ///
    /// # Errors
    /// A fatal producer state.
    pub fn begin(&mut self) -> Result<(), KafkaError> {
        if !self.open.load(Ordering::SeqCst) {
            self.producer.begin_transaction()?;
            self.open.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Whether a transaction is open.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::SeqCst)
    }

    /// Aborts the open transaction, if any, blocking the calling thread
    /// (for the rebalance callback). Returns whether one was aborted.
    ///
    /// # Errors
    /// The abort failed: the transaction is still open (and
    /// [`Self::is_open`] says so), for the caller to abort again or stop.
    pub fn abort_blocking(&self) -> Result<bool, KafkaError> {
        if !self.open.load(Ordering::SeqCst) {
            return Ok(false);
        }
        retry(|| self.producer.abort_transaction(self.timeout))?;
        self.open.store(false, Ordering::SeqCst);
        Ok(true)
    }

    /// Adds `offsets` (next offsets to consume) to the open transaction and
    /// commits it; aborts it when the error requires.
    ///
    /// # Errors
    /// A fatal error: the producer cannot go on.
    pub async fn commit(
        &mut self,
        offsets: TopicPartitionList,
        group: ConsumerGroupMetadata,
    ) -> Result<TxnOutcome, KafkaError> {
        self.begin()?;
        let (p, timeout) = (self.producer.clone(), self.timeout);
        let result = blocking(move || {
            let started = std::time::Instant::now();
            if offsets.count() > 0 {
                retry(|| p.send_offsets_to_transaction(&offsets, &group, timeout))?;
            }
            let offsets_sent = started.elapsed();
            retry(|| p.commit_transaction(timeout))?;
            // Where an exactly_once record's wait goes after its
            // transaction is due (docs: BENCHMARKS.md, issue 17).
            debug!(
                send_offsets_ms = offsets_sent.as_secs_f64() * 1e3,
                commit_ms = (started.elapsed() - offsets_sent).as_secs_f64() * 1e3,
                "transaction committed"
            );
            Ok(())
        })
        .await;
        match result {
            Ok(()) => {
                self.open.store(false, Ordering::SeqCst);
                Ok(TxnOutcome::Committed)
            }
            Err(e) if requires_abort(&e) => {
                warn!(error = %e, "transaction failed; aborting it");
                self.abort().await?;
                Ok(TxnOutcome::Aborted)
            }
            Err(e) => Err(e),
        }
    }

    /// Aborts the open transaction, if any.
    ///
    /// # Errors
    /// A fatal error.
    pub async fn abort(&mut self) -> Result<(), KafkaError> {
        if !self.is_open() {
            return Ok(());
        }
        let (p, timeout) = (self.producer.clone(), self.timeout);
        blocking(move || retry(|| p.abort_transaction(timeout))).await?;
        self.open.store(false, Ordering::SeqCst);
        Ok(())
    }
}

/// Whether librdkafka says the transaction must be aborted (and may then
/// be retried), as opposed to a fatal error.
fn requires_abort(e: &KafkaError) -> bool {
    match e {
        KafkaError::Transaction(rd) => !rd.is_fatal() && rd.txn_requires_abort(),
        _ => false,
    }
}

fn is_retriable(e: &KafkaError) -> bool {
    matches!(e, KafkaError::Transaction(rd) if rd.is_retriable())
}

fn retry(mut call: impl FnMut() -> Result<(), KafkaError>) -> Result<(), KafkaError> {
    let mut attempt = 0;
    loop {
        match call() {
            Err(e) if is_retriable(&e) && attempt < RETRIES => {
                attempt += 1;
                warn!(error = %e, attempt, "transaction call failed; retrying");
            }
            other => return other,
        }
    }
}

/// Runs a blocking librdkafka transaction call off the async workers.
async fn blocking(
    call: impl FnOnce() -> Result<(), KafkaError> + Send + 'static,
) -> Result<(), KafkaError> {
    tokio::task::spawn_blocking(call)
        .await
        .unwrap_or(Err(KafkaError::Canceled))
}
