//! vitalstream: a real-time processor for connected-health measurements.
//!
//! # Architecture
//!
//! ```text
//! vitals.patients ──▶ kafka::follow_profiles ──(process::ProfileSink)──▶ process::ProfileTable
//! <group>.erasures ─▶ kafka::ErasureLog ──────┘                            (DashMap, shared)
//!                                                                │ lookup / erased?
//! vitals.readings.raw ──▶ pipeline::run (batch loop, pauses on backpressure)
//!                           │  codec::Codec::decode_raw        (Confluent framing + Avro)
//!                           │  process::Processor::process     (pure, synchronous)
//!                           │     erased? → validate → profile → dedup
//!                           │     → enrich (BP, body composition) + HRV windows
//!                           │     → alert engine (rules table, cool-downs)
//!                           ▼
//!   kafka::PipelineProducer ──▶ vitals.readings.enriched | vitals.hrv.windows | vitals.alerts
//!                               | vitals.readings.dlq | vitalstream.<group>.state (changelog)
//!                           │
//!     exactly_once: outputs + changelog + input offsets in one transaction (kafka::Transactions)
//!     at_least_once: offsets stored only after outputs and changelog are delivered
//!
//! on assignment: kafka::StateReader (changelog, read_committed)
//!                ──▶ state (decode) ──▶ Processor::install_partition
//! ```
//!
//! Dependencies point one way: [`model`] ← [`codec`], [`erasure`] ←
//! [`process`] ← [`config`] ← [`kafka`], [`state`], [`registry`] ←
//! [`pipeline`]. The core defines what the shell feeds it
//! ([`process::ProfileSink`], the validation settings
//! [`process::ValidationConfig`] that [`config`] re-exports); the DLQ
//! reasons ([`model::DlqReason`]) belong to the topic contract, which the
//! codec and the core both name.
//!
//! * [`model`]: the typed records of the topic contract, free of Kafka and
//!   Avro, and the DLQ reasons.
//! * [`codec`]: Confluent framing and Avro, schemas embedded from `schemas/`.
//! * [`process`]: the pure core. No async, no Kafka types: it takes a decoded
//!   reading plus its coordinates and returns a [`process::Disposition`] saying
//!   where the reading ends: enriched output, DLQ, counted duplicate, or
//!   counted erasure drop. Closed HRV windows are collected per batch.
//! * [`config`]: the one typed, validated configuration, a file per section.
//! * [`kafka`] and [`pipeline`]: the thin async shell that polls, produces and
//!   commits, transactionally (exactly-once, the default) or by storing
//!   offsets after delivery (at-least-once). Every input ends in exactly one
//!   place.
//! * [`erasure`]: the durable set of erased patients (keyed hashes), loaded
//!   from the erasures topic and applied to every partition's state.
//! * [`state`]: the changelog records of per-partition state, restored on
//!   assignment.
//! * [`telemetry`]: metric names, the Prometheus recorder, counters, health flags.
//! * [`http`]: `/metrics`, `/healthz`, `/readyz`; [`healthcheck`] asks them
//!   from the command line.
//! * [`registry`]: the Confluent-compatible schema registry: output schemas
//!   registered at start-up, unknown input writer ids looked up once and
//!   taught to the codec (DESIGN.md §1).
//! * [`tools`]: the operator commands `tail`, `dlq redrive` and `reset`.
//! * `alloc` (private): freed memory handed back to the operating system
//!   after the profile load and during restores; the crate's one module
//!   with `unsafe` code.
//! * `gateway` and `demo` (cargo feature `simulator`, on by default): the
//!   simulated device-ingest gateway used by `demo`, `loadgen`, the tests
//!   and benches. Nothing in the processing path uses them; a production
//!   build leaves them out with `--no-default-features`.
//!
//! Health data is sensitive: no payload or patient identifier is logged at
//! info level or above, and no identifier is ever a metric label.

mod alloc;
pub mod clock;
pub mod codec;
pub mod config;
#[cfg(feature = "simulator")]
pub mod demo;
pub mod erasure;
#[cfg(feature = "simulator")]
pub mod gateway;
pub mod healthcheck;
pub mod http;
pub mod kafka;
pub mod model;
pub mod pipeline;
pub mod process;
pub mod registry;
pub mod state;
pub mod telemetry;
pub mod tools;
