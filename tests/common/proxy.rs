//! A loopback TCP proxy between the clients and tansu, with a switch that
//! cuts the network: [`Proxy::cut`] drops every live connection and refuses
//! new ones (each is accepted and closed at once, which clients see as a
//! refused connection), [`Proxy::restore`] forwards again.
//!
//! tansu must advertise the proxy's address (`--advertised-listener-url`),
//! or clients would reconnect to the broker's own port from the metadata and
//! bypass the proxy; [`start_broker_behind_proxy`] does that.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{Broker, spawn_tansu};

/// The proxy; it stops when dropped.
pub struct Proxy {
    /// Address clients connect to.
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// Bumped on every cut; live connections end when it changes.
    cuts: watch::Sender<u64>,
    /// Connections accepted and forwarded so far.
    pub forwarded: Arc<AtomicU64>,
    /// Connections refused during cuts.
    pub refused: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        // Live connections end with the watch channel.
    }
}

impl Proxy {
    /// Listens on `listener` and forwards every connection to `upstream`.
    pub fn start(listener: std::net::TcpListener, upstream: SocketAddr) -> Self {
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let listener = TcpListener::from_std(listener).expect("tokio listener");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let forwarded = Arc::new(AtomicU64::new(0));
        let refused = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (up, cuts, forwarded, refused) =
                (up.clone(), cuts.clone(), forwarded.clone(), refused.clone());
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    if !up.load(Ordering::SeqCst) {
                        refused.fetch_add(1, Ordering::Relaxed);
                        drop(client);
                        continue;
                    }
                    forwarded.fetch_add(1, Ordering::Relaxed);
                    tokio::spawn(forward(client, upstream, cuts.subscribe()));
                }
            }
        });
        Self {
            addr,
            up,
            cuts,
            forwarded,
            refused,
            task,
        }
    }

    /// Drops every live connection and refuses new ones until [`Self::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Copies both ways until either side closes or the network is cut.
async fn forward(mut client: TcpStream, upstream: SocketAddr, mut cuts: watch::Receiver<u64>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    cuts.mark_unchanged();
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cuts.changed() => {}
    }
    // Dropping both sockets closes them: the client sees its connection lost.
}

/// tansu listening on its own free port and advertising a proxy's address,
/// so every client connection (bootstrap and reconnects) goes through the
/// proxy. `Broker::bootstrap` is the proxy's address.
pub async fn start_broker_behind_proxy() -> (Broker, Proxy) {
    let proxy_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy port");
    let proxy_port = proxy_listener.local_addr().expect("proxy addr").port();
    // Clients that connect before the proxy starts wait in the backlog.
    let mut broker = spawn_tansu(Some(proxy_port)).await;
    let upstream: SocketAddr = ([127, 0, 0, 1], broker.port).into();
    let proxy = Proxy::start(proxy_listener, upstream);
    broker.bootstrap = proxy.addr.to_string();
    (broker, proxy)
}
