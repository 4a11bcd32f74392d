//! The transport edge: UDP, TCP and WebSocket (RFC 7118) sockets feeding the message entry
//! point. Refused requests are answered here with the entry point's stateless reply; accepted
//! messages go to a handler, which may return bytes to send back on the same socket or
//! connection, or answer later through the message's [`ReplyPath`]. The handler is synchronous
//! so that it can only hand work on (e.g. `try_send` into a bounded channel), never block a
//! socket.
//!
//! Architecture invariant: nothing here grows with traffic except the connection tasks, and those
//! are capped by [`TcpOptions::max_connections`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio_tungstenite::tungstenite::{
    self,
    handshake::server::{ErrorResponse, Request, Response},
    http::{HeaderValue, StatusCode, header::SEC_WEBSOCKET_PROTOCOL},
    protocol::{Message as WsMessage, WebSocketConfig},
};

use crate::message::{Frame, Inbound, Limits, Reply, frame, parse_datagram, parse_framed};
use crate::transaction::Transport;

/// What the edge hands on: the message, where it came from and over what kind of transport.
#[derive(Debug)]
pub struct Received {
    pub message: Inbound,
    pub source: SocketAddr,
    pub protocol: Protocol,
    /// How to answer after the handler has returned.
    pub reply: ReplyPath,
}

/// The transport a message came over, as a Via names it (RFC 3261 §18, RFC 7118 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Udp,
    Tcp,
    Ws,
}

impl Protocol {
    /// Whether the transport retransmits by itself, which decides the transactions' timers.
    pub fn reliability(self) -> Transport {
        match self {
            Protocol::Udp => Transport::Unreliable,
            Protocol::Tcp | Protocol::Ws => Transport::Reliable,
        }
    }

    /// A phone registered over a connection is reached through that connection only: a
    /// WebSocket client cannot be dialled at all, and a TCP phone behind NAT not either.
    pub fn is_connection(self) -> bool {
        self != Protocol::Udp
    }

    /// The token of a Via's sent-protocol and of a URI's `transport` parameter.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Udp => "UDP",
            Protocol::Tcp => "TCP",
            Protocol::Ws => "WS",
        }
    }
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
                protocol: Protocol::Udp,
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
    /// A message must complete within this once begun, and a new connection must bring its first
    /// one within it; this also ends a peer that announced a Content-Length it never sends
    /// (RFC 4475 §3.1.2.2 on a stream).
    pub idle_timeout: Duration,
    /// Between messages, once a connection has brought one: a phone registered over it is
    /// reached through it, so it must outlive the registration's refresh interval.
    pub quiet_timeout: Duration,
}

impl Default for TcpOptions {
    fn default() -> Self {
        TcpOptions {
            limits: Limits::default(),
            max_connections: 1_024,
            idle_timeout: Duration::from_secs(32),
            quiet_timeout: Duration::from_secs(3_600 + 32),
        }
    }
}

/// Serves a TCP listener until `shutdown` completes; connections run as their own tasks.
pub async fn serve_tcp(
    listener: TcpListener,
    options: TcpOptions,
    handler: impl Handler,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_connections(listener, options, handler, shutdown, Framing::Tcp).await
}

/// Serves SIP over WebSocket (RFC 7118) on a TCP listener until `shutdown` completes: the
/// handshake must ask for the `sip` subprotocol, and each WebSocket message is one SIP message.
pub async fn serve_ws(
    listener: TcpListener,
    options: TcpOptions,
    handler: impl Handler,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    serve_connections(listener, options, handler, shutdown, Framing::WebSocket).await
}

/// How messages are delimited on a connection.
#[derive(Debug, Clone, Copy)]
enum Framing {
    /// By Content-Length in the byte stream.
    Tcp,
    /// By WebSocket messages, after the handshake.
    WebSocket,
}

/// Accepts connections while fewer than `options.max_connections` are open, each served in a
/// task of its own.
async fn serve_connections(
    listener: TcpListener,
    options: TcpOptions,
    handler: impl Handler,
    shutdown: impl Future<Output = ()>,
    framing: Framing,
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
            match framing {
                Framing::Tcp => {
                    let _ = serve_connection(stream, source, options, &*handler).await;
                }
                Framing::WebSocket => {
                    if let Err(error) = serve_websocket(stream, source, options, &*handler).await {
                        tracing::debug!(%source, %error, "a SIP WebSocket connection ended");
                    }
                }
            }
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
    let mut served = false;
    loop {
        match frame(&buffer, &limits) {
            Ok(Frame::Message { len }) => {
                let answer = match parse_framed(&buffer[..len], &limits) {
                    Ok(message) => {
                        served = true;
                        handler(Received {
                            message,
                            source,
                            protocol: Protocol::Tcp,
                            reply: ReplyPath::Stream(replies.clone()),
                        })
                    }
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
                let wait = options.wait(served && buffer.is_empty());
                let read = tokio::select! {
                    // `replies` lives as long as this loop, so the queue never reports closed.
                    Some(bytes) = queued.recv() => {
                        stream.write_all(&bytes).await?;
                        continue;
                    }
                    read = tokio::time::timeout(wait, stream.read(&mut chunk)) => read,
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

impl TcpOptions {
    /// How long a connection may stay silent: `quiet` between messages of a connection that
    /// has brought one.
    fn wait(&self, quiet: bool) -> Duration {
        if quiet { self.quiet_timeout } else { self.idle_timeout }
    }
}

/// One SIP WebSocket connection: the handshake within the idle timeout, then messages both ways.
async fn serve_websocket(
    stream: TcpStream,
    source: SocketAddr,
    options: TcpOptions,
    handler: &impl Handler,
) -> Result<(), tungstenite::Error> {
    let limits = options.limits;
    let config = WebSocketConfig::default()
        .max_message_size(Some(limits.max_message_bytes))
        .max_frame_size(Some(limits.max_message_bytes));
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(stream, sip_subprotocol, Some(config));
    let mut socket = match tokio::time::timeout(options.idle_timeout, handshake).await {
        Ok(socket) => socket?,
        Err(_) => return Ok(()),
    };
    let (replies, mut queued) = mpsc::channel::<Vec<u8>>(STREAM_REPLY_QUEUE);
    let mut served = false;
    loop {
        let next = tokio::select! {
            // `replies` lives as long as this loop, so the queue never reports closed.
            Some(bytes) = queued.recv() => {
                socket.send(ws_message(bytes)).await?;
                continue;
            }
            next = tokio::time::timeout(options.wait(served), socket.next()) => next,
        };
        let data = match next {
            Err(_) | Ok(None) => return Ok(()),
            Ok(Some(message)) => match message? {
                WsMessage::Text(text) => text.into(),
                WsMessage::Binary(bytes) => bytes,
                // Pings are answered by the library with the next read or write.
                WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => continue,
                WsMessage::Close(_) => return Ok(()),
            },
        };
        // The frame is the message (RFC 7118 §5.1): no Content-Length is needed to delimit it.
        let answer = match parse_datagram(&data, &limits) {
            Ok(message) => {
                served = true;
                handler(Received { message, source, protocol: Protocol::Ws, reply: ReplyPath::Stream(replies.clone()) })
            }
            Err(rejection) => rejection.reply.map(Reply::into_bytes),
        };
        if let Some(bytes) = answer {
            socket.send(ws_message(bytes)).await?;
        }
    }
}

/// RFC 7118 §4.1: the client asks for the `sip` subprotocol and the server confirms it; a
/// handshake that does not ask for it is refused, since what it would carry is not SIP.
#[expect(clippy::result_large_err, reason = "the signature of tungstenite's handshake callback")]
fn sip_subprotocol(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let asks_for_sip = request
        .headers()
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim().eq_ignore_ascii_case("sip"));
    if !asks_for_sip {
        let mut refusal = ErrorResponse::new(Some("Sec-WebSocket-Protocol must offer sip (RFC 7118)".into()));
        *refusal.status_mut() = StatusCode::BAD_REQUEST;
        return Err(refusal);
    }
    response.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("sip"));
    Ok(response)
}

/// SIP is text, but a body need not be UTF-8: such a message goes as a binary frame.
fn ws_message(bytes: Vec<u8>) -> WsMessage {
    match String::from_utf8(bytes) {
        Ok(text) => WsMessage::text(text),
        Err(error) => WsMessage::binary(error.into_bytes()),
    }
}
