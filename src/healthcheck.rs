//! `vitalstream healthcheck`: asks a running instance's `/readyz` (or
//! `/healthz`) and turns the answer into an exit code, for a container
//! `HEALTHCHECK` or any supervisor without an HTTP client of its own (the
//! runtime image has no curl or wget).
//!
//! One HTTP/1.1 GET to the process's own listener over a plain TCP
//! connection, reading the status line and a short body (the reason
//! `/readyz` gives). Written out rather than taken from an HTTP client crate:
//! the check needs none of a client's proxies, redirects, TLS or pooling, and
//! must not pick up a proxy from the environment.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use thiserror::Error;

/// Longest body kept for the report (the `/readyz` reason is one line).
const MAX_RESPONSE_BYTES: u64 = 4096;

/// Why an instance is not healthy.
#[derive(Debug, Error)]
pub enum HealthcheckError {
    /// No connection, or no complete answer in time.
    #[error("http://{addr}{path}: {source}")]
    Unreachable {
        /// The address asked.
        addr: SocketAddr,
        /// The path asked.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The answer is not HTTP.
    #[error("http://{addr}{path}: not an HTTP response")]
    NotHttp {
        /// The address asked.
        addr: SocketAddr,
        /// The path asked.
        path: String,
    },
    /// A status other than 2xx, with the body (e.g. `not ready: …`).
    #[error("http://{addr}{path}: {status} {body}")]
    Status {
        /// The address asked.
        addr: SocketAddr,
        /// The path asked.
        path: String,
        /// The HTTP status code.
        status: u16,
        /// The body, trimmed.
        body: String,
    },
}

/// The address to connect to for a listener bound to `listen`: the loopback
/// address of the same family when it is bound to every interface.
pub fn target(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// GETs `path` from `addr` within `timeout` (for the connection and again
/// for the answer); `Ok` with the body on a 2xx status.
///
/// # Errors
/// [`HealthcheckError`]: unreachable, not HTTP, or another status.
pub fn check(addr: SocketAddr, path: &str, timeout: Duration) -> Result<String, HealthcheckError> {
    let unreachable = |source| HealthcheckError::Unreachable {
        addr,
        path: path.to_owned(),
        source,
    };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(unreachable)?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(unreachable)?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAccept: */*\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(unreachable)?;
    let mut response = Vec::new();
    stream
        .take(MAX_RESPONSE_BYTES)
        .read_to_end(&mut response)
        .map_err(unreachable)?;
    let text = String::from_utf8_lossy(&response);
    let not_http = || HealthcheckError::NotHttp {
        addr,
        path: path.to_owned(),
    };
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(not_http)?;
    let body = body.trim().to_owned();
    if (200..300).contains(&status) {
        Ok(body)
    } else {
        Err(HealthcheckError::Status {
            addr,
            path: path.to_owned(),
            status,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unspecified_listen_address_is_checked_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:9464".parse().expect("addr");
        assert_eq!(target(v4), "127.0.0.1:9464".parse().expect("addr"));
        let v6: SocketAddr = "[::]:9464".parse().expect("addr");
        assert_eq!(target(v6), "[::1]:9464".parse().expect("addr"));
        let given: SocketAddr = "10.1.2.3:9000".parse().expect("addr");
        assert_eq!(target(given), given);
    }

    #[test]
    fn a_closed_port_is_unreachable() {
        // Bound but not listening: connections are refused, and no other
        // socket can take the port while the test runs (a port picked free
        // and released could be taken by a parallel test).
        let reserved = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        reserved
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .expect("bind a loopback port");
        let addr = reserved
            .local_addr()
            .expect("local addr")
            .as_socket()
            .expect("an inet address");
        let err = check(addr, "/readyz", Duration::from_secs(1)).expect_err("closed");
        assert!(matches!(err, HealthcheckError::Unreachable { .. }), "{err}");
    }
}
