//! `/metrics`, `/healthz` and `/readyz` on a configurable address (axum).
//!
//! - `/metrics`: the Prometheus text format of every `vitalstream_*` series.
//! - `/healthz`: 200 while the pipeline loop keeps turning, 503 once it has
//!   stalled for `http.stall_after_ms` (restart me).
//! - `/readyz`: 200 once the profile table has caught up, partitions are
//!   assigned and their state restored; 503 with the reason otherwise
//!   (don't count me as serving yet).
//!
//! The listener binds to loopback by default; nothing it serves contains
//! patient data. `http.listen_addr` may use port 0: the bound address is
//! logged at start-up (`serving /metrics, /healthz and /readyz addr=…`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tracing::{info, warn};

use crate::clock::now_ms;
use crate::telemetry::{Stats, prometheus, render};

#[derive(Clone)]
struct AppState {
    stats: Arc<Stats>,
    stall_after_ms: i64,
}

/// Binds `addr` and serves the endpoints until `shutdown` resolves.
/// Returns the bound address (useful with port 0) once listening.
///
/// # Errors
/// The bind error (address in use, permission denied).
pub async fn serve(
    addr: SocketAddr,
    stats: Arc<Stats>,
    stall_after_ms: i64,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let _ = stats.http_addr.set(bound);
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(AppState {
            stats,
            stall_after_ms,
        });
    let upkeep = tokio::spawn(async {
        // Histogram buffers are drained into buckets here and on render.
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            if let Some(handle) = prometheus() {
                handle.run_upkeep();
            }
        }
    });
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await;
        upkeep.abort();
        if let Err(e) = served {
            warn!(error = %e, "HTTP endpoint stopped");
        }
    });
    // The bound address, not the configured one: with port 0 (tests, several
    // instances on one host) this line is how to find the endpoints.
    info!(addr = %bound, "serving /metrics, /healthz and /readyz");
    Ok(bound)
}

async fn metrics() -> impl IntoResponse {
    let body = render();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    if s.stats.health.is_live(now_ms(), s.stall_after_ms) {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "pipeline loop stalled\n")
    }
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.stats.health.readiness() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {}\n", reason.as_str()),
        ),
    }
}
