//! The Confluent-compatible schema registry (DESIGN.md §1).
//!
//! With `[schema_registry] url` set, start-up registers the output schemas
//! under their TopicNameStrategy subjects (`<topic>-value`; the
//! `EnrichedReading` → `RawReading` reference as a registry reference to
//! subject `io.vitalstream.RawReading`) and writes the ids the registry
//! returns. Input records written under any other id are resolved by
//! fetching the writer schema once ([`WriterResolver`]) and reading it
//! through Avro schema resolution; the cache keeps them working while the
//! registry is down.

mod client;
mod resolver;

use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

pub use client::{FetchedSchema, RegistryError, SchemaRegistry, record_subject, value_subject};
pub use resolver::{RegistryUnavailable, WriterResolver};

use crate::codec::SchemaIds;
use crate::config::Config;

/// Registers the schemas at start-up, retrying an unreachable registry for
/// `schema_registry.startup_timeout_ms`; returns the client and the ids.
///
/// # Errors
/// [`RegistryError`]: unreachable until the deadline, or a refusal
/// (authentication, an incompatible schema in a subject), at once.
pub async fn connect(config: &Config) -> Result<(SchemaRegistry, SchemaIds), RegistryError> {
    let registry = SchemaRegistry::new(&config.schema_registry)?;
    let deadline =
        Instant::now() + Duration::from_millis(config.schema_registry.startup_timeout_ms);
    let mut backoff = Duration::from_millis(200);
    loop {
        match registry.register_all(&config.topics).await {
            Ok(ids) => {
                info!(
                    url = registry.url(),
                    enriched_reading = ids.enriched_reading,
                    hrv_window = ids.hrv_window,
                    clinician_alert = ids.clinician_alert,
                    raw_reading = ids.raw_reading,
                    patient_profile = ids.patient_profile,
                    "schemas registered with the schema registry"
                );
                return Ok((registry, ids));
            }
            Err(e) if e.is_unreachable() && Instant::now() + backoff < deadline => {
                warn!(error = %e, "schema registry not reachable yet; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}
