//! [`WriterResolver`]: learns writer schema ids the codec does not know yet
//! from the registry, before a record is decoded.
//!
//! The codec stays synchronous: the async shell (pipeline, profile loader)
//! calls [`WriterResolver::prepare`] with a record's payload, which fetches
//! an unknown id once and teaches it to the [`Codec`]. A known id costs a
//! header read and a comparison. An id the registry does not have is
//! remembered as missing for `not_found_cache_ms`, so a flood of records
//! with bogus ids is not a flood of requests; those records then go to the
//! DLQ as `unknown_schema`, as do those of an incompatible writer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::Counter;
use thiserror::Error;
use tokio::time::Instant;
use tracing::{info, warn};

use super::client::{RegistryError, SchemaRegistry};
use crate::codec::{Codec, InputKind, framing};
use crate::config::SchemaRegistryConfig;
use crate::telemetry::{SCHEMA_REGISTRY_CACHE_HITS, SCHEMA_REGISTRY_LOOKUPS};

/// A writer id could not be looked up because the registry stayed
/// unreachable (or refused) for `schema_registry.unavailable_timeout_ms`.
#[derive(Debug, Error)]
#[error(
    "schema registry unavailable for {waited_s} s while looking up writer schema id {id} of a \
     {kind} record: {source}; nothing of the open batch was committed"
)]
pub struct RegistryUnavailable {
    /// The writer id.
    pub id: u32,
    /// The record kind.
    pub kind: &'static str,
    /// Seconds spent retrying.
    pub waited_s: u64,
    /// The last failure.
    pub source: RegistryError,
}

/// Learns unknown writer ids of input records from the registry.
pub struct WriterResolver {
    registry: Arc<SchemaRegistry>,
    codec: Arc<Codec>,
    /// Ids the registry did not have, until when they count as missing.
    missing: Mutex<HashMap<u32, Instant>>,
    not_found_for: Duration,
    unavailable_timeout: Duration,
    metrics: LookupMetrics,
}

struct LookupMetrics {
    hits: Counter,
    resolved: Counter,
    incompatible: Counter,
    not_found: Counter,
    failed: Counter,
}

/// Most ids remembered as missing; beyond, the oldest knowledge is dropped.
const MAX_MISSING: usize = 10_000;

impl WriterResolver {
    /// A resolver teaching `codec` what `registry` knows.
    pub fn new(
        registry: Arc<SchemaRegistry>,
        codec: Arc<Codec>,
        config: &SchemaRegistryConfig,
    ) -> Self {
        let lookups =
            |result: &'static str| metrics::counter!(SCHEMA_REGISTRY_LOOKUPS, "result" => result);
        Self {
            registry,
            codec,
            missing: Mutex::new(HashMap::new()),
            not_found_for: Duration::from_millis(config.not_found_cache_ms),
            unavailable_timeout: Duration::from_millis(config.unavailable_timeout_ms),
            metrics: LookupMetrics {
                hits: metrics::counter!(SCHEMA_REGISTRY_CACHE_HITS),
                resolved: lookups("resolved"),
                incompatible: lookups("incompatible"),
                not_found: lookups("not_found"),
                failed: lookups("error"),
            },
        }
    }

    /// Makes sure the codec knows the writer id of `payload` (a framed
    /// `kind` record) if the registry does. Unframed payloads and ids the
    /// registry lacks are left to the decoder, which rejects them.
    ///
    /// # Errors
    /// [`RegistryUnavailable`] when an unknown id could not be looked up
    /// within `schema_registry.unavailable_timeout_ms`.
    pub async fn prepare(
        &self,
        kind: InputKind,
        payload: Option<&[u8]>,
    ) -> Result<(), RegistryUnavailable> {
        let Some(Ok((id, _))) = payload.map(framing::split) else {
            return Ok(());
        };
        if self.codec.is_primary(kind, id) {
            return Ok(());
        }
        if self.codec.knows_writer(kind, id) {
            self.metrics.hits.increment(1);
            return Ok(());
        }
        if self.known_missing(id) {
            return Ok(());
        }
        self.lookup(kind, id).await
    }

    fn known_missing(&self, id: u32) -> bool {
        let mut missing = self.missing.lock().unwrap_or_else(|p| p.into_inner());
        match missing.get(&id) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                missing.remove(&id);
                false
            }
            None => false,
        }
    }

    async fn lookup(&self, kind: InputKind, id: u32) -> Result<(), RegistryUnavailable> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.registry.fetch(id).await {
                Ok(fetched) => {
                    let outcome = match &fetched.avro {
                        Ok(text) => self.codec.learn_writer(kind, id, text, &fetched.references),
                        Err(kind) => Err(format!("a {kind} schema, not Avro")),
                    };
                    let outcome = outcome.inspect_err(|reason| {
                        self.codec.learn_incompatible(kind, id, reason);
                    });
                    match outcome {
                        Ok(None) => {
                            self.metrics.resolved.increment(1);
                            info!(
                                schema_id = id,
                                record = kind.as_str(),
                                "writer schema learnt from the schema registry"
                            );
                        }
                        Ok(Some(reason)) | Err(reason) => {
                            self.metrics.incompatible.increment(1);
                            warn!(
                                schema_id = id,
                                record = kind.as_str(),
                                reason,
                                "writer schema from the registry cannot be read as the current \
                                 schema; its records go to the DLQ as unknown_schema"
                            );
                        }
                    }
                    return Ok(());
                }
                Err(RegistryError::NotFound(_)) => {
                    self.metrics.not_found.increment(1);
                    self.remember_missing(id);
                    warn!(
                        schema_id = id,
                        record = kind.as_str(),
                        "writer schema id not in the schema registry; its records go to the DLQ \
                         as unknown_schema"
                    );
                    return Ok(());
                }
                Err(e) => {
                    self.metrics.failed.increment(1);
                    let waited = started.elapsed();
                    if waited >= self.unavailable_timeout {
                        return Err(RegistryUnavailable {
                            id,
                            kind: kind.as_str(),
                            waited_s: waited.as_secs(),
                            source: e,
                        });
                    }
                    warn!(
                        schema_id = id,
                        error = %e,
                        retry_in_ms = backoff.as_millis(),
                        "schema registry lookup failed; retrying (cached ids keep working)"
                    );
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn remember_missing(&self, id: u32) {
        let mut missing = self.missing.lock().unwrap_or_else(|p| p.into_inner());
        if missing.len() >= MAX_MISSING {
            let now = Instant::now();
            missing.retain(|_, until| *until > now);
            if missing.len() >= MAX_MISSING {
                missing.clear();
            }
        }
        missing.insert(id, Instant::now() + self.not_found_for);
    }
}
