//! Producer transactions for exactly-once processing: one batch's outputs,
//! state changelog records and input offsets commit or abort together.
//!
//! Errors are handled as librdkafka classifies them: retriable calls are
//! retried, abortable ones abort the transaction (the caller then rewinds to
//! the committed offsets and restores state), fatal ones (fencing by a newer
//! instance, an unrecoverable producer) stop the run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::KafkaError;
use rdkafka::producer::Producer;
use tokio::task::JoinHandle;

use super::PipelineProducer;
use tracing::{debug, info, warn};

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
///
/// A commit runs in the background ([`Self::start_commit`]) while the
/// pipeline processes the next batches, whose outputs it holds back until
/// the commit has ended (librdkafka accepts no records while it commits).
/// [`Self::begin`] during a commit marks that such held work exists; a
/// revocation meanwhile waits for the commit to end, then drops the held
/// work ([`Self::abort_blocking`]).
#[derive(Clone)]
pub struct Transactions {
    producer: PipelineProducer,
    timeout: Duration,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// A transaction is open in librdkafka (begun, not yet ended).
    open: AtomicBool,
    /// A commit was started and its end not yet taken by the pipeline.
    committing: AtomicBool,
    /// Work for the next transaction was processed during the commit.
    deferred: AtomicBool,
    /// Whether a commit runs (set before its thread starts), so a
    /// revocation waits for it to end before the partitions are handed
    /// over; `ended` is notified when it has.
    running: Mutex<bool>,
    ended: Condvar,
}

impl Shared {
    /// Waits until no commit runs; the guard keeps a new one from
    /// starting. Also returns whether it waited.
    fn idle(&self) -> (MutexGuard<'_, bool>, bool) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        let waited = *running;
        while *running {
            running = self
                .ended
                .wait(running)
                .unwrap_or_else(PoisonError::into_inner);
        }
        (running, waited)
    }
}

/// Marks the running commit ended when dropped (also if it panicked), and
/// wakes a revocation waiting for it.
struct Ended<'a>(&'a Shared);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        *self
            .0
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = false;
        self.0.ended.notify_all();
    }
}

/// How a background commit ended, and how long it took.
pub type CommitResult = (Result<TxnOutcome, KafkaError>, Duration);

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
            shared: Arc::default(),
        })
    }

    /// Begins a transaction unless one is open. Call before producing.
    /// During a commit ([`Self::is_committing`]) nothing begins: the work
    /// is marked as held for the transaction that begins once the commit
    /// has ended ([`Self::begin_deferred`]).
    ///
    /// # Errors
    /// A fatal producer state.
    pub fn begin(&mut self) -> Result<(), KafkaError> {
        if self.shared.committing.load(Ordering::SeqCst) {
            self.shared.deferred.store(true, Ordering::SeqCst);
            return Ok(());
        }
        if !self.shared.open.load(Ordering::SeqCst) {
            self.producer.begin_transaction()?;
            self.shared.open.store(true, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Whether a transaction is open.
    pub fn is_open(&self) -> bool {
        self.shared.open.load(Ordering::SeqCst)
    }

    /// Whether a commit was started and its end not yet taken
    /// ([`Self::commit_ended`]).
    pub fn is_committing(&self) -> bool {
        self.shared.committing.load(Ordering::SeqCst)
    }

    /// The pipeline took the end of the background commit: whether work
    /// was held for the next transaction meanwhile (and not dropped by a
    /// revocation). The next [`Self::begin`] begins a transaction.
    pub fn commit_ended(&mut self) -> bool {
        self.shared.committing.store(false, Ordering::SeqCst);
        self.shared.deferred.swap(false, Ordering::SeqCst)
    }

    /// Aborts the open transaction, if any, blocking the calling thread
    /// (for the rebalance callback). A commit in flight is waited for
    /// first: partitions are handed over only once it has ended. Returns
    /// whether work was dropped: an open transaction aborted, or work held
    /// for the next transaction during the commit.
    ///
    /// # Errors
    /// The abort failed: the transaction is still open (and
    /// [`Self::is_open`] says so), for the caller to abort again or stop.
    pub fn abort_blocking(&self) -> Result<bool, KafkaError> {
        let (_idle, waited) = self.shared.idle();
        if waited {
            info!("the running commit ended before the partitions are handed over");
        }
        let held = self.shared.deferred.swap(false, Ordering::SeqCst);
        if !self.shared.open.load(Ordering::SeqCst) {
            return Ok(held);
        }
        retry(|| self.producer.abort_transaction(self.timeout))?;
        self.shared.open.store(false, Ordering::SeqCst);
        Ok(true)
    }

    /// Starts committing the open transaction with `offsets` (next offsets
    /// to consume) on a blocking thread, and returns at once; an error that
    /// requires it aborts the transaction (the outcome says so). Until the pipeline takes its end
    /// ([`Self::commit_ended`]), [`Self::is_committing`] holds and
    /// [`Self::begin`] only marks work as held.
    ///
    /// # Errors
    /// No transaction could be begun (a fatal producer state).
    pub fn start_commit(
        &mut self,
        offsets: TopicPartitionList,
        group: ConsumerGroupMetadata,
    ) -> Result<JoinHandle<CommitResult>, KafkaError> {
        self.begin()?;
        *self.shared.idle().0 = true;
        self.shared.committing.store(true, Ordering::SeqCst);
        let this = self.clone();
        Ok(tokio::task::spawn_blocking(move || {
            let _ended = Ended(&this.shared);
            let started = std::time::Instant::now();
            let result = this.commit_blocking(&offsets, &group);
            (result, started.elapsed())
        }))
    }

    fn commit_blocking(
        &self,
        offsets: &TopicPartitionList,
        group: &ConsumerGroupMetadata,
    ) -> Result<TxnOutcome, KafkaError> {
        let (p, timeout) = (&self.producer, self.timeout);
        let started = std::time::Instant::now();
        let result = (|| {
            if offsets.count() > 0 {
                retry(|| p.send_offsets_to_transaction(offsets, group, timeout))?;
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
        })();
        match result {
            Ok(()) => {
                self.shared.open.store(false, Ordering::SeqCst);
                Ok(TxnOutcome::Committed)
            }
            Err(e) if requires_abort(&e) => {
                warn!(error = %e, "transaction failed; aborting it");
                retry(|| p.abort_transaction(timeout))?;
                self.shared.open.store(false, Ordering::SeqCst);
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
        let this = self.clone();
        blocking(move || this.abort_blocking().map(|_| ())).await
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
