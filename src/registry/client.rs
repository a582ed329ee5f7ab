//! [`SchemaRegistry`]: the HTTP client of a Confluent-compatible registry
//! (Confluent, Karapace, Redpanda, Apicurio's ccompat API), through the
//! `schema_registry_converter` crate's REST calls.
//!
//! vitalstream uses three of them: register a schema under a subject
//! (`POST /subjects/{s}/versions`, with references), look a registered
//! schema up (`POST /subjects/{s}`, for a reference's version) and fetch a
//! writer schema by id (`GET /schemas/ids/{id}`, then each reference by
//! subject and version).

use std::time::Duration;

use metrics::Counter;
use reqwest::{Certificate, ClientBuilder, Identity};
use schema_registry_converter::async_impl::schema_registry::{
    SrSettings, get_referenced_schema, get_schema_by_id, post_schema,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{
    RawError, RegisteredReference, SchemaType, SuppliedReference, SuppliedSchema,
};
use thiserror::Error;

use crate::codec::{SchemaIds, schemas};
use crate::config::{SchemaRegistryConfig, Topics};
use crate::telemetry::{SCHEMA_REGISTRY_ERRORS, SCHEMA_REGISTRY_REQUESTS};

/// Why a registry call failed.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// No answer, a timeout or a 5xx: worth retrying.
    #[error("schema registry {url} is unreachable: {reason}")]
    Unreachable {
        /// The first configured URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The registry answered that the schema id does not exist.
    #[error("schema id {0} is not in the schema registry")]
    NotFound(u32),
    /// The registry refused the request (authentication, authorisation,
    /// an incompatible schema, a malformed answer).
    #[error("schema registry {url} refused {what}: {reason}")]
    Refused {
        /// The first configured URL.
        url: String,
        /// The request.
        what: String,
        /// The registry's answer.
        reason: String,
    },
    /// The client could not be built from the configuration.
    #[error("schema registry client: {0}")]
    Setup(String),
}

impl RegistryError {
    /// Whether retrying may help.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

/// A writer schema as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedSchema {
    /// Its Avro text, or the schema type when it is not Avro.
    pub avro: Result<String, String>,
    /// The texts of the schemas it references, dependencies first.
    pub references: Vec<String>,
}

/// A Confluent-compatible schema registry.
pub struct SchemaRegistry {
    settings: SrSettings,
    /// The first URL, without credentials.
    url: String,
    /// `user:password@` of URLs that carry credentials, removed from messages.
    userinfo: Vec<String>,
    metrics: RequestMetrics,
}

struct RequestMetrics {
    ok: Counter,
    not_found: Counter,
    failed: Counter,
    unreachable: Counter,
    refused: Counter,
}

impl RequestMetrics {
    fn new() -> Self {
        Self {
            ok: metrics::counter!(SCHEMA_REGISTRY_REQUESTS, "outcome" => "ok"),
            not_found: metrics::counter!(SCHEMA_REGISTRY_REQUESTS, "outcome" => "not_found"),
            failed: metrics::counter!(SCHEMA_REGISTRY_REQUESTS, "outcome" => "error"),
            unreachable: metrics::counter!(SCHEMA_REGISTRY_ERRORS, "kind" => "unreachable"),
            refused: metrics::counter!(SCHEMA_REGISTRY_ERRORS, "kind" => "refused"),
        }
    }
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The subject under which vitalstream registers a record it references
/// or reads (`RawReading`, `PatientProfile`): its full name (Confluent's
/// RecordNameStrategy), a subject vitalstream owns, so the gateway's
/// `<topic>-value` subject is never written to.
pub fn record_subject(full_name: &str) -> String {
    full_name.to_owned()
}

/// The TopicNameStrategy subject of `topic`'s values.
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

const RAW_READING_NAME: &str = "io.vitalstream.RawReading";
const PATIENT_PROFILE_NAME: &str = "io.vitalstream.PatientProfile";

impl SchemaRegistry {
    /// A client for `config` (no request is made).
    ///
    /// # Errors
    /// [`RegistryError::Setup`] when a TLS file cannot be read or parsed.
    pub fn new(config: &SchemaRegistryConfig) -> Result<Self, RegistryError> {
        let urls = config.urls();
        let Some(first) = urls.first().cloned() else {
            return Err(RegistryError::Setup("schema_registry.url is empty".into()));
        };
        let mut builder = SrSettings::new_builder(first.clone());
        for url in &urls[1..] {
            builder.add_url(url.clone());
        }
        if let (Some(user), Some(password)) =
            (&config.basic_auth_username, config.basic_auth_password())
        {
            builder.set_basic_authorization(user, Some(password.expose()));
        }
        if let Some(token) = config.bearer_token() {
            builder.set_token_authorization(token.expose());
        }
        builder.set_timeout(Duration::from_millis(config.request_timeout_ms));
        let settings = builder
            .build_with(tls(config)?)
            .map_err(|e| RegistryError::Setup(e.to_string()))?;
        let userinfo = urls
            .iter()
            .filter_map(|u| {
                let stripped = without_userinfo(u);
                let (scheme, _) = u.split_once("://")?;
                let info = u.strip_prefix(scheme)?.strip_prefix("://")?;
                let host = stripped.strip_prefix(scheme)?.strip_prefix("://")?;
                info.strip_suffix(host)
                    .filter(|i| !i.is_empty())
                    .map(str::to_owned)
            })
            .collect();
        Ok(Self {
            settings,
            url: without_userinfo(&first),
            userinfo,
            metrics: RequestMetrics::new(),
        })
    }

    /// The first configured URL (for messages).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Registers the output schemas under `<topic>-value` and the records
    /// they reference or vitalstream reads under their full names; returns
    /// the ids the registry assigned.
    ///
    /// Registering is idempotent: a schema already in a subject keeps its
    /// id and version.
    ///
    /// # Errors
    /// [`RegistryError`] for the first call that failed.
    pub async fn register_all(&self, topics: &Topics) -> Result<SchemaIds, RegistryError> {
        let raw_reading = self
            .register(
                record_subject(RAW_READING_NAME),
                supplied(schemas::RAW_READING_AVSC),
            )
            .await?;
        let patient_profile = self
            .register(
                record_subject(PATIENT_PROFILE_NAME),
                supplied(schemas::PATIENT_PROFILE_AVSC),
            )
            .await?;
        let reference = SuppliedReference::new(
            RAW_READING_NAME.to_owned(),
            record_subject(RAW_READING_NAME),
            schemas::RAW_READING_AVSC.to_owned(),
        );
        let enriched_reading = self
            .register(
                value_subject(&topics.enriched),
                supplied(schemas::ENRICHED_READING_AVSC).with_references(vec![reference]),
            )
            .await?;
        let hrv_window = self
            .register(
                value_subject(&topics.hrv_windows),
                supplied(schemas::HRV_WINDOW_AVSC),
            )
            .await?;
        let clinician_alert = self
            .register(
                value_subject(&topics.alerts),
                supplied(schemas::CLINICIAN_ALERT_AVSC),
            )
            .await?;
        Ok(SchemaIds {
            raw_reading,
            patient_profile,
            enriched_reading,
            hrv_window,
            clinician_alert,
        })
    }

    async fn register(
        &self,
        subject: String,
        schema: SuppliedSchema,
    ) -> Result<u32, RegistryError> {
        let what = format!("registering a schema under subject `{subject}`");
        let result = post_schema(&self.settings, subject, schema).await;
        self.count(result.as_ref().err());
        result
            .map(|registered| registered.id)
            .map_err(|e| self.classify(e, &what, None))
    }

    /// Fetches writer schema `id` and the schemas it references.
    ///
    /// # Errors
    /// [`RegistryError::NotFound`] when the registry does not know `id`,
    /// else the failure.
    pub async fn fetch(&self, id: u32) -> Result<FetchedSchema, RegistryError> {
        let what = format!("fetching schema id {id}");
        let result = get_schema_by_id(id, &self.settings).await;
        self.count(result.as_ref().err());
        let registered = result.map_err(|e| self.classify(e, &what, Some(id)))?;
        if registered.schema_type != SchemaType::Avro {
            return Ok(FetchedSchema {
                avro: Err(format!("{:?}", registered.schema_type)),
                references: Vec::new(),
            });
        }
        let mut references = Vec::new();
        let mut seen = Vec::new();
        self.collect_references(&registered.references, &mut references, &mut seen, 0)
            .await?;
        Ok(FetchedSchema {
            avro: Ok(registered.schema),
            references,
        })
    }

    /// Appends the texts of `refs` (and theirs, first) to `out`.
    async fn collect_references(
        &self,
        refs: &[RegisteredReference],
        out: &mut Vec<String>,
        seen: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), RegistryError> {
        if depth > MAX_REFERENCE_DEPTH {
            return Err(RegistryError::Refused {
                url: self.url.clone(),
                what: "resolving schema references".into(),
                reason: format!("references nest deeper than {MAX_REFERENCE_DEPTH}"),
            });
        }
        for reference in refs {
            if seen.contains(&reference.name) {
                continue;
            }
            seen.push(reference.name.clone());
            let what = format!(
                "fetching reference `{}` (subject `{}` version {})",
                reference.name, reference.subject, reference.version
            );
            let result = get_referenced_schema(&self.settings, reference).await;
            self.count(result.as_ref().err());
            let schema = result.map_err(|e| self.classify(e, &what, None))?;
            Box::pin(self.collect_references(&schema.references, out, seen, depth + 1)).await?;
            out.push(schema.schema);
        }
        Ok(())
    }

    fn count(&self, error: Option<&SRCError>) {
        match error {
            None => self.metrics.ok.increment(1),
            Some(e) if not_found(e) => self.metrics.not_found.increment(1),
            Some(e) => {
                self.metrics.failed.increment(1);
                if unreachable(e) {
                    self.metrics.unreachable.increment(1);
                } else {
                    self.metrics.refused.increment(1);
                }
            }
        }
    }

    fn classify(&self, e: SRCError, what: &str, id: Option<u32>) -> RegistryError {
        if let Some(id) = id.filter(|_| not_found(&e)) {
            return RegistryError::NotFound(id);
        }
        let mut reason = describe(&e);
        for info in &self.userinfo {
            reason = reason.replace(info.as_str(), "");
        }
        if unreachable(&e) {
            RegistryError::Unreachable {
                url: self.url.clone(),
                reason,
            }
        } else {
            RegistryError::Refused {
                url: self.url.clone(),
                what: what.to_owned(),
                reason,
            }
        }
    }
}

/// The error with its chain of causes (a refused connection, a
/// certificate that does not verify), each once.
fn describe(e: &SRCError) -> String {
    let mut parts = vec![e.error.clone()];
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// `url` without credentials written into it (`https://user:pass@host`),
/// for messages and logs.
fn without_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host_start = rest.find('/').unwrap_or(rest.len());
            match rest[..host_start].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// Deepest chain of references followed.
const MAX_REFERENCE_DEPTH: usize = 8;

fn supplied(avsc: &str) -> SuppliedSchema {
    SuppliedSchema::new(None, SchemaType::Avro, avsc.to_owned())
}

/// The registry's error code, when it answered with one.
fn error_code(e: &SRCError) -> Option<u32> {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<RawError>())
        .map(|raw| raw.error_code)
}

/// Confluent codes 404xx: subject, version or schema not found.
fn not_found(e: &SRCError) -> bool {
    error_code(e).is_some_and(|c| (40400..40500).contains(&c))
}

/// No answer, or a server-side error (5xx, Confluent codes 5xxxx).
fn unreachable(e: &SRCError) -> bool {
    e.retriable
        || error_code(e).is_some_and(|c| (500..600).contains(&c) || (50000..60000).contains(&c))
}

/// The HTTP client with the configured CA and client certificate.
fn tls(config: &SchemaRegistryConfig) -> Result<ClientBuilder, RegistryError> {
    let read = |key: &str, path: &std::path::Path| {
        std::fs::read(path).map_err(|e| {
            RegistryError::Setup(format!(
                "schema_registry.{key}: cannot read {}: {e}",
                path.display()
            ))
        })
    };
    let mut builder = reqwest::Client::builder();
    if let Some(path) = &config.ssl_ca_location {
        let pem = read("ssl_ca_location", path)?;
        let certs = Certificate::from_pem_bundle(&pem).map_err(|e| {
            RegistryError::Setup(format!(
                "schema_registry.ssl_ca_location: {} holds no PEM certificate: {e}",
                path.display()
            ))
        })?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    if let (Some(cert), Some(key)) = (&config.ssl_certificate_location, &config.ssl_key_location) {
        let cert_pem = read("ssl_certificate_location", cert)?;
        let key_pem = read("ssl_key_location", key)?;
        let identity = Identity::from_pkcs8_pem(&cert_pem, &key_pem).map_err(|e| {
            RegistryError::Setup(format!(
                "schema_registry.ssl_certificate_location / ssl_key_location: not a PEM \
                 certificate and PKCS#8 key: {e}"
            ))
        })?;
        builder = builder.identity(identity);
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::without_userinfo;

    #[test]
    fn credentials_in_the_url_are_not_shown() {
        assert_eq!(
            without_userinfo("https://key:s3cret@registry:8081/base"),
            "https://registry:8081/base"
        );
        assert_eq!(
            without_userinfo("http://registry:8081"),
            "http://registry:8081"
        );
    }
}
