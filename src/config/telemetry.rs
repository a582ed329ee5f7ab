//! `[http]` (the metrics and health listener) and `[telemetry]` (logging).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The `/metrics`, `/healthz`, `/readyz` listener.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Serve the endpoints at all.
    pub enabled: bool,
    /// Listen address; loopback by default (set `0.0.0.0:9464` in a container).
    pub listen_addr: SocketAddr,
    /// `/healthz` fails once the pipeline loop has not turned for this long.
    pub stall_after_ms: i64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            stall_after_ms: 60_000,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// Log format.
    pub log_format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `vitalstream=debug`.
    pub log_level: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Text,
            log_level: "info".into(),
        }
    }
}
