//! The transport edge: UDP and TCP sockets feeding the message entry point. Refused requests are
//! answered here with the entry point's stateless reply; accepted messages go to a handler, which
//! may return bytes to send back on the same socket or connection, or answer later through the
//! message's [`ReplyPath`]. The handler is synchronous so that it can only hand work on (e.g.
//! `try_send` into a bounded channel), never block a socket.
//!
//! Architecture invariant: nothing here grows with traffic except the connection tasks, and those
//! are capped by [`TcpOptions::max_connections`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc};

use crate::message::{Frame, Inbound, Limits, Reply, frame, parse_datagram, parse_framed};
use crate::transaction::Transport;

/// What the edge hands on: the message, where it came from and over what kind of transport.
#[derive(Debug)]
pub struct Received {
    pub message: Inbound,
    pub source: SocketAddr,
    pub transport: Transport,
    /// How to answer after the handler has returned.
    pub reply: ReplyPath,
}

/// The way back to where a message came from, for answers sent after the handler returned.
#[derive(Debug, Clone)]
pub enum ReplyPath {
    /// The UDP socket the datagram arrived on.
    Datagram(Arc<UdpSocket>),
    /// The TCP connection's queue of bytes to write.
    Stream(mpsc::Sender<Vec<u8>>),
}

/// Answers queued for one connection beyond this are dropped: a peer that does not read must not
/// make the sender wait or the queue grow.
const STREAM_REPLY_QUEUE: usize = 32;

impl ReplyPath {
    /// Hands `bytes` over without waiting; `false` when they could not be (socket buffer full,
    /// connection closed or not draining), which for UDP is a lost datagram like any other.
    pub fn try_send(&self, bytes: &[u8], to: SocketAddr) -> bool {
        match self {
            ReplyPath::Datagram(socket) => socket.try_send_to(bytes, to).is_ok(),
            ReplyPath::Stream(queue) => queue.try_send(bytes.to_vec()).is_ok(),
        }
    }
}

/// Called for every accepted message; `Some(bytes)` is sent back to the source.
pub trait Handler: Fn(Received) -> Option<Vec<u8>> + Send + Sync + 'static {}
impl<F> Handler for F where F: Fn(Received) -> Option<Vec<u8>> + Send + Sync + 'static {}

/// Serves one UDP socket until `shutdown` completes or the socket fails.
pub async fn serve_udp(
    socket: UdpSocket,
    limits: Limits,
    handler: impl Handler,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let socket = Arc::new(socket);
    // One byte more than the limit, so that an oversized datagram is seen as such, not truncated.
    let mut buffer = vec![0u8; limits.max_message_bytes + 1];
    tokio::pin!(shutdown);
    loop {
        let (len, source) = tokio::select! {
            received = socket.recv_from(&mut buffer) => received?,
            () = &mut shutdown => return Ok(()),
        };
        let answer = match parse_datagram(&buffer[..len], &limits) {
            Ok(message) => handler(Received {
                message,
                source,
                transport: Transport::Unreliable,
                reply: ReplyPath::Datagram(socket.clone()),
            }),
            Err(rejection) => rejection.reply.map(Reply::into_bytes),
        };
        if let Some(bytes) = answer {
            // A send that fails is a lost datagram, which UDP peers recover from by retransmitting.
            let _ = socket.send_to(&bytes, source).await;
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct TcpOptions {
    pub limits: Limits,
    /// Further connections wait in the kernel's accept queue.
    pub max_connections: usize,
    /// A connection that completes no message for this long is closed; it also ends a peer that
    /// announced a Content-Length it never sends (RFC 4475 §3.1.2.2 on a stream).
    pub idle_timeout: Duration,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions { limits: Limits::default(), max_connections: 1_024, idle_timeout: Duration::from_secs(32) }
    }
}

/// Serves a TCP listener until `shutdown` completes; connections run as their own tasks.
pub async fn serve_tcp(
    listener: TcpListener,
    options: TcpOptions,
    handler: impl Handler,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let handler = Arc::new(handler);
    let permits = Arc::new(Semaphore::new(options.max_connections));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.map_err(std::io::Error::other)?,
            () = &mut shutdown => return Ok(()),
        };
        let (stream, source) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            // The connection ends on error or at the peer's close; either way it is done.
            let _ = serve_connection(stream, source, options, &*handler).await;
            drop(permit);
        });
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    source: SocketAddr,
    options: TcpOptions,
    handler: &impl Handler,
) -> std::io::Result<()> {
    let limits = options.limits;
    let mut buffer = Vec::with_capacity(4_096);
    let mut chunk = vec![0u8; 16_384];
    let (replies, mut queued) = mpsc::channel(STREAM_REPLY_QUEUE);
    loop {
        match frame(&buffer, &limits) {
            Ok(Frame::Message { len }) => {
                let answer = match parse_framed(&buffer[..len], &limits) {
                    Ok(message) => handler(Received {
                        message,
                        source,
                        transport: Transport::Reliable,
                        reply: ReplyPath::Stream(replies.clone()),
                    }),
                    Err(rejection) => rejection.reply.map(Reply::into_bytes),
                };
                buffer.drain(..len);
                if let Some(bytes) = answer {
                    stream.write_all(&bytes).await?;
                }
            }
            Ok(Frame::KeepAlive { len, ping }) => {
                buffer.drain(..len);
                if ping {
                    // RFC 5626 §4.4.1: a double-CRLF ping is answered with a single-CRLF pong.
                    stream.write_all(b"\r\n").await?;
                }
            }
            Ok(Frame::Incomplete) => {
                let read = tokio::select! {
                    // `replies` lives as long as this loop, so the queue never reports closed.
                    Some(bytes) = queued.recv() => {
                        stream.write_all(&bytes).await?;
                        continue;
                    }
                    read = tokio::time::timeout(options.idle_timeout, stream.read(&mut chunk)) => read,
                };
                match read {
                    Ok(Ok(0)) | Err(_) => return Ok(()),
                    Ok(Ok(n)) => buffer.extend_from_slice(&chunk[..n]),
                    Ok(Err(error)) => return Err(error),
                }
            }
            // The stream cannot be resynchronised after a framing error (RFC 3261 §18.3).
            Err(_) => return Ok(()),
        }
    }
}
