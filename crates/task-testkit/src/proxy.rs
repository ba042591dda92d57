//! A TCP proxy that a test can cut and restore, or freeze and thaw, to make a real database
//! unreachable: cut connections end (the client sees a reset or end of stream), frozen ones
//! stay open and silent (no FIN, no RST, nothing forwarded in either direction, as on a
//! network partition) until thawed, when what was held back flows again.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{AbortHandle, JoinHandle};

/// Forwards connections from a loopback port to `target` while open.
pub struct TcpProxy {
    address: SocketAddr,
    open: Arc<AtomicBool>,
    frozen: watch::Sender<bool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    acceptor: JoinHandle<()>,
}

/// Copies `from` to `to`, holding still while frozen.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        if frozen.wait_for(|frozen| !*frozen).await.is_err() {
            return;
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            // Frozen while waiting for data: stop reading (what arrives stays in the kernel).
            _ = frozen.wait_for(|frozen| *frozen) => continue,
        };
        let Ok(count) = read else { return };
        if count == 0 {
            let _ = to.shutdown().await;
            return;
        }
        if frozen.wait_for(|frozen| !*frozen).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..count]).await.is_err() {
            return;
        }
    }
}

impl TcpProxy {
    pub async fn start(target: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let address = listener.local_addr()?;
        let open = Arc::new(AtomicBool::new(true));
        let (frozen, _) = watch::channel(false);
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let acceptor = tokio::spawn({
            let open = open.clone();
            let connections = connections.clone();
            let frozen = frozen.subscribe();
            async move {
                while let Ok((inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        // Closed: the client sees its connection reset at once.
                        drop(inbound);
                        continue;
                    }
                    let frozen = frozen.clone();
                    let forward = tokio::spawn(async move {
                        // A connection accepted while frozen is held, silent, until thawed.
                        let mut waiting = frozen.clone();
                        if waiting.wait_for(|frozen| !*frozen).await.is_err() {
                            return;
                        }
                        let Ok(outbound) = TcpStream::connect(target).await else {
                            return;
                        };
                        let (inbound_read, inbound_write) = inbound.into_split();
                        let (outbound_read, outbound_write) = outbound.into_split();
                        tokio::join!(
                            pump(inbound_read, outbound_write, frozen.clone()),
                            pump(outbound_read, inbound_write, frozen),
                        );
                    });
                    connections
                        .lock()
                        .expect("connections lock")
                        .push(forward.abort_handle());
                }
            }
        });
        Ok(Self {
            address,
            open,
            frozen,
            connections,
            acceptor,
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Drops every forwarded connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        for connection in self.connections.lock().expect("connections lock").drain(..) {
            connection.abort();
        }
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }

    /// Stops forwarding anything, on open and new connections alike, without closing any.
    pub fn freeze(&self) {
        self.frozen.send_replace(true);
    }

    /// Forwards again what was held back and what comes next.
    pub fn thaw(&self) {
        self.frozen.send_replace(false);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.acceptor.abort();
    }
}
