//! TLS in front of tansu (which cannot serve TLS itself, docs/security.md):
//! a certificate authority and a server certificate made in the test, and a
//! loopback proxy that terminates TLS with them and forwards the plain bytes
//! to the broker. tansu advertises the proxy's address, so every connection
//! a client makes (bootstrap, partition leaders, the group coordinator) is a
//! TLS one.
//!
//! Certificates come from the `openssl` crate: native-tls (already a
//! dependency for the proxy) links it, so it costs no new build.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509Name};
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vitalstream::config::{SecurityConfig, SecurityProtocol};

use super::{Broker, Rec, spawn_tansu};

/// A certificate authority made for one test.
pub struct TestCa {
    key: PKey<Private>,
    cert: X509,
}

/// A P-256 key (fast to generate, unlike RSA).
fn new_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("P-256");
    PKey::from_ec_key(EcKey::generate(&group).expect("EC key")).expect("PKey")
}

fn name(common_name: &str) -> X509Name {
    let mut n = X509Name::builder().expect("name builder");
    n.append_entry_by_nid(Nid::COMMONNAME, common_name)
        .expect("CN");
    n.build()
}

/// A builder valid from yesterday to tomorrow with a random serial.
fn cert_builder(subject: &X509Name, key: &PKey<Private>) -> X509Builder {
    let mut b = X509Builder::new().expect("x509 builder");
    b.set_version(2).expect("v3");
    let mut serial = BigNum::new().expect("bignum");
    serial
        .rand(64, MsbOption::MAYBE_ZERO, false)
        .expect("serial");
    b.set_serial_number(&serial.to_asn1_integer().expect("asn1 serial"))
        .expect("serial");
    b.set_subject_name(subject).expect("subject");
    b.set_pubkey(key).expect("pubkey");
    let yesterday = vitalstream::pipeline::now_ms() / 1000 - 86_400;
    b.set_not_before(&Asn1Time::from_unix(yesterday).expect("time"))
        .expect("not before");
    b.set_not_after(&Asn1Time::days_from_now(1).expect("time"))
        .expect("not after");
    b
}

impl TestCa {
    /// A self-signed CA named `common_name`.
    pub fn new(common_name: &str) -> Self {
        let key = new_key();
        let subject = name(common_name);
        let mut b = cert_builder(&subject, &key);
        b.set_issuer_name(&subject).expect("issuer");
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
            .expect("bc");
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .expect("ku"),
        )
        .expect("ku");
        let ski = SubjectKeyIdentifier::new()
            .build(&b.x509v3_context(None, None))
            .expect("ski");
        b.append_extension(ski).expect("ski");
        b.sign(&key, MessageDigest::sha256()).expect("sign CA");
        Self {
            key,
            cert: b.build(),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1 signed by this CA:
    /// (certificate PEM, PKCS#8 key PEM).
    pub fn server_cert(&self) -> (Vec<u8>, Vec<u8>) {
        let key = new_key();
        let mut b = cert_builder(&name("localhost"), &key);
        b.set_issuer_name(self.cert.subject_name()).expect("issuer");
        b.append_extension(BasicConstraints::new().build().expect("bc"))
            .expect("bc");
        b.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .build()
                .expect("ku"),
        )
        .expect("ku");
        b.append_extension(ExtendedKeyUsage::new().server_auth().build().expect("eku"))
            .expect("eku");
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .ip("127.0.0.1")
            .build(&b.x509v3_context(Some(&self.cert), None))
            .expect("san");
        b.append_extension(san).expect("san");
        let aki = AuthorityKeyIdentifier::new()
            .keyid(true)
            .build(&b.x509v3_context(Some(&self.cert), None))
            .expect("aki");
        b.append_extension(aki).expect("aki");
        b.sign(&self.key, MessageDigest::sha256())
            .expect("sign server cert");
        (
            b.build().to_pem().expect("cert pem"),
            key.private_key_to_pem_pkcs8().expect("key pem"),
        )
    }

    /// Writes the CA certificate (PEM) to `dir/<file>` and returns its path.
    pub fn write_pem(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, self.cert.to_pem().expect("CA pem")).expect("write CA file");
        path
    }
}

/// The TLS-terminating proxy; it stops when dropped.
pub struct TlsProxy {
    /// Address clients connect to.
    pub addr: SocketAddr,
    /// TLS handshakes that completed.
    pub handshakes: Arc<AtomicU64>,
    /// TLS handshakes that failed: the client refused the certificate (a
    /// fatal alert) or sent what is not TLS. A connection closed before the
    /// handshake ended is not counted.
    pub failed_handshakes: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsProxy {
    /// Terminates TLS on `listener` with the certificate and key (PEM) and
    /// forwards each connection to `upstream` in the clear.
    pub fn start(
        listener: std::net::TcpListener,
        upstream: SocketAddr,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Self {
        let identity = native_tls::Identity::from_pkcs8(cert_pem, key_pem).expect("TLS identity");
        let acceptor = tokio_native_tls::TlsAcceptor::from(
            native_tls::TlsAcceptor::new(identity).expect("TLS acceptor"),
        );
        listener.set_nonblocking(true).expect("nonblocking");
        let listener = TcpListener::from_std(listener).expect("tokio listener");
        let addr = listener.local_addr().expect("proxy address");
        let handshakes = Arc::new(AtomicU64::new(0));
        let failed_handshakes = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (ok, failed) = (handshakes.clone(), failed_handshakes.clone());
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let (acceptor, ok, failed) = (acceptor.clone(), ok.clone(), failed.clone());
                    tokio::spawn(async move {
                        let _ = client.set_nodelay(true);
                        let mut tls = match acceptor.accept(client).await {
                            Ok(tls) => tls,
                            // A client that closes its socket before the
                            // handshake ends (librdkafka dropping a spare
                            // connection at start-up) refused nothing.
                            Err(e) if is_hang_up(&e) => {
                                eprintln!("TLS proxy: a client hung up mid-handshake: {e}");
                                return;
                            }
                            Err(e) => {
                                if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                                    eprintln!(
                                        "TLS proxy: a handshake failed (first of this proxy): {e}"
                                    );
                                }
                                return;
                            }
                        };
                        ok.fetch_add(1, Ordering::Relaxed);
                        let Ok(mut server) = TcpStream::connect(upstream).await else {
                            return;
                        };
                        let _ = server.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                    });
                }
            }
        });
        Self {
            addr,
            handshakes,
            failed_handshakes,
            task,
        }
    }
}

/// tansu on a free port behind a [`TlsProxy`] whose certificate `ca` signed;
/// tansu advertises the proxy, and `Broker::bootstrap` is the proxy's address.
pub async fn start_broker_behind_tls(ca: &TestCa) -> (Broker, TlsProxy) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy port");
    let proxy_port = listener.local_addr().expect("proxy addr").port();
    let mut broker = spawn_tansu(Some(proxy_port)).await;
    let (cert, key) = ca.server_cert();
    let proxy = TlsProxy::start(listener, ([127, 0, 0, 1], broker.port).into(), &cert, &key);
    broker.bootstrap = proxy.addr.to_string();
    (broker, proxy)
}

/// `[kafka.security]` for TLS verified against the CA file `ca_file`.
pub fn ssl_security(ca_file: &Path) -> SecurityConfig {
    let mut s = SecurityConfig::default();
    s.protocol = Some(SecurityProtocol::Ssl);
    s.ssl_ca_location = Some(ca_file.to_path_buf());
    s
}

/// A test client for `broker` over TLS, trusting `ca_file`.
pub fn tls_client(broker: &Broker, ca_file: &Path) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &broker.bootstrap)
        .set("security.protocol", "ssl")
        .set("ssl.ca.location", ca_file.to_string_lossy());
    c
}

/// Produces `records` to `topic` with `client`, in order.
pub async fn produce_with(client: &ClientConfig, topic: &str, records: &[Rec]) {
    let producer: FutureProducer = client
        .clone()
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    let sent: Vec<_> = futures::stream::iter(records)
        .map(|r| {
            let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic);
            if let Some(k) = &r.key {
                rec = rec.key(&k[..]);
            }
            if let Some(p) = &r.payload {
                rec = rec.payload(&p[..]);
            }
            producer.send(rec, Duration::from_secs(30))
        })
        .buffered(100)
        .collect()
        .await;
    for delivery in sent {
        delivery.expect("test record delivered over TLS");
    }
}

/// Reads `topic` from the start with `client` until `expected` records came
/// (or 60 s passed).
pub async fn read_with(client: &ClientConfig, topic: &str, expected: usize) -> Vec<OwnedMessage> {
    let consumer: StreamConsumer = client
        .clone()
        .set("group.id", format!("tls-reader-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("session.timeout.ms", "6000")
        .create()
        .expect("reader");
    consumer.subscribe(&[topic]).expect("subscribe");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.len() < expected {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => out.push(m.detach()),
            Ok(Err(e)) => panic!("reading {topic} over TLS: {e}"),
            Err(_) => break,
        }
    }
    out
}

/// Whether a handshake ended because the client closed the connection,
/// rather than with a TLS alert or bad bytes: an I/O hang-up anywhere in
/// the error's chain, or OpenSSL's report of an end of input.
fn is_hang_up(e: &native_tls::Error) -> bool {
    use std::io::ErrorKind as K;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                K::UnexpectedEof | K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe
            )
        {
            return true;
        }
        source = err.source();
    }
    let text = e.to_string().to_lowercase();
    text.contains("unexpected eof") || text.contains("unexpected end of file")
}
