//! The async shell: poll → process → produce → deliver → store offsets or
//! commit. Every input record ends in exactly one place: enriched topic,
//! DLQ (original bytes plus reason headers), the duplicate counter or the
//! erasure counter.
//!
//! * [`run`] (`run.rs`): wiring — brokers, registry, profile table, Kafka
//!   clients, the commit strategy; the end of the run.
//! * `batch.rs`: the batch loop — poll, process through the pure core,
//!   close the batch (derived outputs, state changes).
//! * `route.rs`: output routing — disposition → records, DLQ headers.
//! * `commit/`: one strategy per `processing.guarantee`: at_least_once
//!   stores offsets after delivery, exactly_once commits transactions.
//! * `rebalance.rs`: restore on assignment, release on revocation, rewind
//!   after an aborted transaction.
//! * `backpressure.rs`: bounded producer queue, paused consumption.
//! * `hold.rs`: outputs held while a transaction commits (exactly_once).
//! * `settle.rs`: work completing in the background of the batch loop
//!   (acknowledged batches, ended commits) and backpressure waiting for it.
//! * `report.rs`: telemetry of committed batches.
//!
//! A failed batch is never committed: at_least_once stops before storing
//! its offsets, so a restart re-reads it; exactly_once aborts its
//! transaction.

mod backpressure;
mod batch;
mod commit;
mod error;
mod hold;
mod rebalance;
mod report;
mod route;
mod run;
mod settle;

pub use crate::clock::now_ms;
pub use error::PipelineError;
pub use run::run;
