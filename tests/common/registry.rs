//! A small Confluent-REST schema registry for tests (DESIGN.md §8): an axum
//! server on a free loopback port speaking the calls vitalstream and the
//! Confluent clients make (register, look up, fetch by id, fetch a subject
//! version). Ids are global and a schema identical to one registered keeps
//! its id, as in Confluent's registry. No compatibility checks.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

#[derive(Clone, PartialEq)]
struct Stored {
    schema: String,
    schema_type: String,
    references: Value,
}

#[derive(Default)]
struct Inner {
    /// Index + 1 is the id.
    schemas: Vec<Stored>,
    /// Subject → ids, one per version (version = index + 1).
    subjects: BTreeMap<String, Vec<u32>>,
}

struct Shared {
    inner: Mutex<Inner>,
    down: AtomicBool,
    requests: AtomicU64,
    /// `Authorization` header every request must carry, if set.
    auth: Option<String>,
}

/// A running test registry; stops on drop.
pub struct TestRegistry {
    pub url: String,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// A registry served over TLS with a fresh self-signed certificate for
/// 127.0.0.1 (made with the `openssl` command), and that certificate's file.
pub async fn start_tls_registry(dir: &std::path::Path) -> (TestRegistry, std::path::PathBuf) {
    let cert = dir.join("registry-cert.pem");
    let key = dir.join("registry-key.pem");
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl command (Debian: apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let identity = native_tls::Identity::from_pkcs8(
        &std::fs::read(&cert).expect("cert"),
        &std::fs::read(&key).expect("key"),
    )
    .expect("identity");
    let acceptor = tokio_native_tls::TlsAcceptor::from(
        native_tls::TlsAcceptor::new(identity).expect("TLS acceptor"),
    );
    let shared = new_shared(None);
    let app = router(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the test registry");
    let addr: SocketAddr = listener.local_addr().expect("registry address");
    let server = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    let registry = TestRegistry {
        url: format!("https://{addr}"),
        shared,
        server,
    };
    (registry, cert)
}

fn new_shared(auth: Option<String>) -> Arc<Shared> {
    Arc::new(Shared {
        inner: Mutex::new(Inner::default()),
        down: AtomicBool::new(false),
        requests: AtomicU64::new(0),
        auth,
    })
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/subjects/{subject}/versions", post(register))
        .route("/subjects/{subject}", post(lookup))
        .route("/subjects/{subject}/versions/{version}", get(version))
        .route("/schemas/ids/{id}", get(by_id))
        .with_state(shared)
}

/// Starts a registry that needs no authentication.
pub async fn start_registry() -> TestRegistry {
    start_registry_with_auth(None).await
}

/// Starts a registry that answers 401 unless a request carries the
/// `Authorization` header value `auth`.
pub async fn start_registry_with_auth(auth: Option<String>) -> TestRegistry {
    let shared = new_shared(auth);
    let app = router(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the test registry");
    let addr: SocketAddr = listener.local_addr().expect("registry address");
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    TestRegistry {
        url: format!("http://{addr}"),
        shared,
        server,
    }
}

impl TestRegistry {
    /// Registers `schema` (Avro) under `subject` as a client would; its id.
    pub fn register(&self, subject: &str, schema: &str) -> u32 {
        let stored = Stored {
            schema: schema.to_owned(),
            schema_type: "AVRO".into(),
            references: json!([]),
        };
        self.shared
            .inner
            .lock()
            .expect("registry lock")
            .add(subject, stored)
            .0
    }

    /// The schema text registered under `id`.
    pub fn schema(&self, id: u32) -> Option<String> {
        let inner = self.shared.inner.lock().expect("registry lock");
        inner.schemas.get(id as usize - 1).map(|s| s.schema.clone())
    }

    /// The references registered with `id`.
    pub fn references(&self, id: u32) -> Value {
        let inner = self.shared.inner.lock().expect("registry lock");
        inner.schemas[id as usize - 1].references.clone()
    }

    /// The ids of `subject`'s versions.
    pub fn versions(&self, subject: &str) -> Vec<u32> {
        let inner = self.shared.inner.lock().expect("registry lock");
        inner.subjects.get(subject).cloned().unwrap_or_default()
    }

    /// Requests answered so far (any outcome).
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Stops answering: new connections are refused, open ones get 503.
    pub fn stop(&self) {
        self.shared.down.store(true, Ordering::SeqCst);
        self.server.abort();
    }
}

impl Inner {
    /// Adds `stored` to `subject` unless there; (id, version).
    fn add(&mut self, subject: &str, stored: Stored) -> (u32, u32) {
        let id = match self.schemas.iter().position(|s| *s == stored) {
            Some(i) => i as u32 + 1,
            None => {
                self.schemas.push(stored);
                self.schemas.len() as u32
            }
        };
        let versions = self.subjects.entry(subject.to_owned()).or_default();
        let version = match versions.iter().position(|v| *v == id) {
            Some(i) => i as u32 + 1,
            None => {
                versions.push(id);
                versions.len() as u32
            }
        };
        (id, version)
    }
}

fn reply(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [("content-type", "application/vnd.schemaregistry.v1+json")],
        body.to_string(),
    )
        .into_response()
}

fn ok(body: &Value) -> Response {
    reply(StatusCode::OK, body)
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    reply(status, &json!({"error_code": code, "message": message}))
}

/// 503 while down, 401 without the expected credentials.
fn gate(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    if shared.down.load(Ordering::SeqCst) {
        return Some(error(StatusCode::SERVICE_UNAVAILABLE, 50003, "down"));
    }
    if let Some(expected) = &shared.auth {
        let given = headers.get("authorization").and_then(|v| v.to_str().ok());
        if given != Some(expected.as_str()) {
            return Some(error(StatusCode::UNAUTHORIZED, 40101, "Unauthorized"));
        }
    }
    None
}

/// The schema of a request body; `None` answers 422.
fn parse_body(body: &str) -> Option<Stored> {
    let v: Value = serde_json::from_str(body).ok()?;
    let schema = v["schema"].as_str()?;
    Some(Stored {
        schema: schema.to_owned(),
        schema_type: v["schemaType"].as_str().unwrap_or("AVRO").to_owned(),
        // Stored as a registry does: name, subject, version.
        references: match &v["references"] {
            Value::Array(refs) => refs
                .iter()
                .map(|r| json!({"name": r["name"], "subject": r["subject"], "version": r["version"]}))
                .collect(),
            _ => json!([]),
        },
    })
}

fn describe(subject: &str, id: u32, version: u32, s: &Stored) -> Value {
    json!({
        "subject": subject,
        "id": id,
        "version": version,
        "schema": s.schema,
        "schemaType": s.schema_type,
        "references": s.references,
    })
}

async fn register(
    State(shared): State<Arc<Shared>>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(refused) = gate(&shared, &headers) {
        return refused;
    }
    let Some(stored) = parse_body(&body) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, 42201, "invalid schema");
    };
    let (id, _) = shared
        .inner
        .lock()
        .expect("registry lock")
        .add(&subject, stored);
    ok(&json!({"id": id}))
}

async fn lookup(
    State(shared): State<Arc<Shared>>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    if let Some(refused) = gate(&shared, &headers) {
        return refused;
    }
    let Some(stored) = parse_body(&body) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, 42201, "invalid schema");
    };
    let inner = shared.inner.lock().expect("registry lock");
    let Some(versions) = inner.subjects.get(&subject) else {
        return error(StatusCode::NOT_FOUND, 40401, "Subject not found");
    };
    for (i, id) in versions.iter().enumerate() {
        let s = &inner.schemas[*id as usize - 1];
        if *s == stored {
            return ok(&describe(&subject, *id, i as u32 + 1, s));
        }
    }
    error(StatusCode::NOT_FOUND, 40403, "Schema not found")
}

async fn version(
    State(shared): State<Arc<Shared>>,
    Path((subject, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = gate(&shared, &headers) {
        return refused;
    }
    let inner = shared.inner.lock().expect("registry lock");
    let Some(versions) = inner.subjects.get(&subject) else {
        return error(StatusCode::NOT_FOUND, 40401, "Subject not found");
    };
    let index = match version.as_str() {
        "latest" | "-1" => versions.len().checked_sub(1),
        v => v.parse::<usize>().ok().and_then(|v| v.checked_sub(1)),
    };
    match index.and_then(|i| versions.get(i).map(|id| (i, *id))) {
        Some((i, id)) => ok(&describe(
            &subject,
            id,
            i as u32 + 1,
            &inner.schemas[id as usize - 1],
        )),
        None => error(StatusCode::NOT_FOUND, 40402, "Version not found"),
    }
}

async fn by_id(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<u32>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = gate(&shared, &headers) {
        return refused;
    }
    let inner = shared.inner.lock().expect("registry lock");
    match id
        .checked_sub(1)
        .and_then(|i| inner.schemas.get(i as usize))
    {
        Some(s) => ok(&json!({
            "schema": s.schema,
            "schemaType": s.schema_type,
            "references": s.references,
        })),
        None => error(StatusCode::NOT_FOUND, 40403, "Schema not found"),
    }
}
