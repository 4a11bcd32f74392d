//! The socket edge on loopback: keep-alives, limits that end a connection or drop a datagram
//! without stalling the listener, and SIP over WebSocket (RFC 7118).

use std::time::Duration;

use loket_sip::message::{Inbound, Limits, Reply};
use loket_sip::transport::{Received, TcpOptions, serve_tcp, serve_udp, serve_ws};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::oneshot;
use tokio::time::timeout;

const DEADLINE: Duration = Duration::from_secs(10);
const OPTIONS: &[u8] = b"OPTIONS sip:probe@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK-t\r\n\
From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:probe@127.0.0.1>\r\nCall-ID: t1\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n";

fn answer_options(received: Received) -> Option<Vec<u8>> {
    match received.message {
        Inbound::Request(request) => Some(Reply::to_request(&request, 200, "OK").into_bytes()),
        Inbound::Response(_) => None,
    }
}

async fn read_some(stream: &mut TcpStream) -> Vec<u8> {
    let mut buffer = vec![0u8; 4_096];
    let len = timeout(DEADLINE, stream.read(&mut buffer)).await.expect("an answer in time").expect("read");
    buffer.truncate(len);
    buffer
}

/// RFC 5626 §4.4.1: a double-CRLF ping gets a single-CRLF pong, and the connection goes on.
#[tokio::test]
async fn tcp_ping_gets_a_pong() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(serve_tcp(listener, TcpOptions::default(), answer_options, async {
        let _ = stopped.await;
    }));
    let mut stream = TcpStream::connect(server).await.expect("connect");
    stream.write_all(b"\r\n\r\n").await.expect("write");
    assert_eq!(read_some(&mut stream).await, b"\r\n");
    stream.write_all(OPTIONS).await.expect("write");
    assert!(read_some(&mut stream).await.starts_with(b"SIP/2.0 200 OK\r\n"));
    let _ = stop.send(());
    serving.await.expect("task").expect("listener");
}

/// A header section that never ends is cut off at the size limit: the connection is closed.
#[tokio::test]
async fn tcp_endless_header_section_closes_the_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = listener.local_addr().expect("address");
    let options = TcpOptions { limits: Limits { max_message_bytes: 2_048, max_headers: 64 }, ..TcpOptions::default() };
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(serve_tcp(listener, options, answer_options, async {
        let _ = stopped.await;
    }));
    let mut stream = TcpStream::connect(server).await.expect("connect");
    let endless = [&OPTIONS[..OPTIONS.len() - 2], "X-Filler: 0123456789\r\n".repeat(200).as_bytes()].concat();
    // The listener may close before everything is written; that is the expected outcome, and
    // closing with unread bytes makes the kernel reset the connection instead of ending it.
    let _ = stream.write_all(&endless).await;
    let mut buffer = vec![0u8; 4_096];
    match timeout(DEADLINE, stream.read(&mut buffer)).await.expect("closed in time") {
        Ok(len) => assert_eq!(len, 0, "no answer, only the end of the connection"),
        Err(error) => assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset),
    }
    let mut fresh = TcpStream::connect(server).await.expect("connect");
    fresh.write_all(OPTIONS).await.expect("write");
    assert!(read_some(&mut fresh).await.starts_with(b"SIP/2.0 200 OK\r\n"));
    let _ = stop.send(());
    serving.await.expect("task").expect("listener");
}

/// A datagram whose header section alone passes the size limit cannot be answered: it is dropped
/// (a smaller header section with a body too large gets a 513, see the entry point's tests), and
/// the next datagram is served.
#[tokio::test]
async fn udp_oversized_datagram_is_dropped() {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let server = socket.local_addr().expect("address");
    let limits = Limits { max_message_bytes: 2_048, max_headers: 64 };
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(serve_udp(socket, limits, answer_options, async {
        let _ = stopped.await;
    }));
    let client = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let oversized =
        [&OPTIONS[..OPTIONS.len() - 2], "X-Filler: 0123456789\r\n".repeat(200).as_bytes(), b"\r\n"].concat();
    client.send_to(&oversized, server).await.expect("send");
    let probe = String::from_utf8_lossy(OPTIONS).replace("Call-ID: t1", "Call-ID: t2");
    client.send_to(probe.as_bytes(), server).await.expect("send");
    let mut buffer = vec![0u8; 4_096];
    let (len, _) = timeout(DEADLINE, client.recv_from(&mut buffer)).await.expect("an answer in time").expect("recv");
    let answer = String::from_utf8_lossy(&buffer[..len]);
    assert!(answer.contains("\r\nCall-ID: t2\r\n"), "the first answer is the probe's: {answer}");
    let _ = stop.send(());
    serving.await.expect("task").expect("listener");
}

/// A SIP WebSocket client (RFC 7118 §4.1: it asks for the `sip` subprotocol).
async fn ws_client(
    server: std::net::SocketAddr,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{server}").into_client_request().expect("a request");
    request.headers_mut().insert("Sec-WebSocket-Protocol", "sip".parse().expect("a header value"));
    let (socket, response) = tokio_tungstenite::connect_async(request).await.expect("the handshake");
    let protocol = response.headers().get("Sec-WebSocket-Protocol").and_then(|value| value.to_str().ok());
    assert_eq!(protocol, Some("sip"), "the server confirms the subprotocol");
    socket
}

async fn next_text(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>,
) -> String {
    use futures_util::StreamExt;
    let message = timeout(DEADLINE, socket.next()).await.expect("a message in time").expect("open").expect("read");
    message.into_text().expect("a text frame").to_string()
}

/// RFC 7118 §5.1: each WebSocket message is one SIP message, which needs no Content-Length; a
/// malformed one gets its 400 on the same connection, which goes on serving.
#[tokio::test]
async fn ws_carries_one_sip_message_per_frame() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(serve_ws(listener, TcpOptions::default(), answer_options, async {
        let _ = stopped.await;
    }));
    let mut socket = ws_client(server).await;
    let without_length = String::from_utf8_lossy(OPTIONS).replace("Content-Length: 0\r\n", "");
    socket.send(Message::text(without_length)).await.expect("send");
    let answer = next_text(&mut socket).await;
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n") && answer.contains("Call-ID: t1\r\n"), "{answer}");

    let malformed = String::from_utf8_lossy(OPTIONS).replace("CSeq: 1 OPTIONS", "CSeq: x OPTIONS");
    socket.send(Message::text(malformed)).await.expect("send");
    let refusal = next_text(&mut socket).await;
    assert!(refusal.starts_with("SIP/2.0 400 "), "{refusal}");

    let probe = String::from_utf8_lossy(OPTIONS).replace("Call-ID: t1", "Call-ID: t2");
    socket.send(Message::binary(probe.into_bytes())).await.expect("send");
    let answer = next_text(&mut socket).await;
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n") && answer.contains("Call-ID: t2\r\n"), "{answer}");
    let _ = stop.send(());
    serving.await.expect("task").expect("listener");
}

/// A handshake that does not ask for the `sip` subprotocol is refused with 400.
#[tokio::test]
async fn ws_without_the_sip_subprotocol_is_refused() {
    use tokio_tungstenite::tungstenite::Error;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let server = listener.local_addr().expect("address");
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = tokio::spawn(serve_ws(listener, TcpOptions::default(), answer_options, async {
        let _ = stopped.await;
    }));
    match tokio_tungstenite::connect_async(format!("ws://{server}")).await {
        Err(Error::Http(response)) => assert_eq!(response.status(), 400),
        other => panic!("expected a refused handshake, got {:?}", other.map(|(_, response)| response.status())),
    }
    // The listener serves the next client.
    drop(ws_client(server).await);
    let _ = stop.send(());
    serving.await.expect("task").expect("listener");
}
