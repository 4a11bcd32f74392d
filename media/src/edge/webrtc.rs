//! The browser's leg: WebRTC (ICE-lite, DTLS-SRTP) terminated by str0m, in front of an ordinary
//! session.
//!
//! A `WebRtcLeg` is a gateway task and a `Session`. The gateway speaks ICE, DTLS and SRTP to the
//! browser on a port of the engine's range and exchanges plain RTP with its session over the
//! loopback interface, so everything a session does (bridging, hold and music, prompts,
//! recording, its counters) works for the browser as for a SIP phone, without a second
//! implementation. The price is one loopback hop each way per packet: two system calls and a
//! wake-up. A browser leg is an agent's, and agents are few next to callers; folding str0m into
//! the session's own task is the way to save them when that matters.
//!
//! Only PCMU is offered to the browser: every WebRTC endpoint implements it (RFC 7874 §3), so a
//! caller's G.711 reaches the agent without transcoding (a PCMA caller is converted by table).
//! loket is ICE-lite: it answers the browser's connectivity checks on one host candidate and
//! learns the browser's address from them, so the browser's own candidates (mDNS names,
//! trickled later) are never needed.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::format::Codec as WebRtcCodec;
use str0m::media::{Frequency, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Codec, MediaEngine, RemoteParams, Session, SessionError};
use crate::rtcp::is_rtcp;
use crate::rtp::{HEADER_LEN, RtpHeader, RtpPacket};

/// A browser that has not completed ICE and DTLS within this time after the answer is not
/// coming: the leg ends.
const CONNECT_WITHIN: Duration = Duration::from_secs(30);
/// The largest datagram: an Ethernet MTU, as for the sessions.
const MAX_DATAGRAM: usize = 1500;
/// Datagrams read per wake-up before the loop looks at its other inputs again.
const BATCH: usize = 32;

/// Why a browser's offer did not become a leg.
#[derive(Debug, thiserror::Error)]
pub enum WebRtcError {
    #[error("the browser's offer cannot be used: {0}")]
    Offer(String),
    #[error(transparent)]
    Session(#[from] SessionError),
    #[error("cannot bind the gateway's loopback socket: {0}")]
    Bind(#[source] io::Error),
}

/// A browser's audio, as a session. Dropping it ends the leg; `close` also waits for its ports.
#[derive(Debug)]
pub struct WebRtcLeg {
    session: Session,
    /// A message, or dropping it, stops the gateway.
    stop: mpsc::Sender<()>,
    ended: watch::Receiver<bool>,
    gateway: JoinHandle<()>,
}

impl WebRtcLeg {
    /// The session the browser's audio goes through: bridge it, play to it, read its counters.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The browser has gone (ICE lost, DTLS closed, never connected) or the leg was closed.
    pub fn is_ended(&self) -> bool {
        *self.ended.borrow()
    }

    /// Resolves when the leg ends.
    pub async fn ended(&self) {
        let mut ended = self.ended.clone();
        // An error means the gateway has gone, which is the end as well.
        let _ = ended.wait_for(|ended| *ended).await;
    }

    /// Ends the leg, where others may hold it too: the gateway stops and `ended` resolves.
    pub fn end(&self) {
        // Full means a stop is on its way already.
        let _ = self.stop.try_send(());
    }

    /// Ends the leg and waits until its gateway and its session have stopped.
    pub async fn close(self) {
        let WebRtcLeg { session, stop, gateway, .. } = self;
        drop(stop);
        // A panic in the gateway has been reported already.
        let _ = gateway.await;
        session.close().await;
    }
}

impl MediaEngine {
    /// Answers a browser's SDP offer with a leg of its own: the answer goes back to the browser,
    /// which then connects to loket's candidate. Must be called within a Tokio runtime.
    pub async fn accept_webrtc(&self, offer: &str) -> Result<(WebRtcLeg, String), WebRtcError> {
        let offer = SdpOffer::from_sdp_string(offer).map_err(|error| WebRtcError::Offer(error.to_string()))?;
        let session = self.allocate()?;
        // The browser's side: the RTP port of a pair from the range (WebRTC multiplexes RTCP).
        let (browser, _rtcp, lease) = self.bind_pair()?;
        let candidate = SocketAddr::new(self.sdp_ip, lease.port());
        let inner = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).await.map_err(WebRtcError::Bind)?;
        let inner_address = inner.local_addr().map_err(WebRtcError::Bind)?;
        let session_address = session.leg.rtp.local_addr().map_err(SessionError::Bind)?;
        let session_address = match session_address.ip() {
            ip if ip.is_unspecified() => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), session_address.port()),
            _ => session_address,
        };
        session
            .set_remote(RemoteParams {
                rtp: inner_address,
                rtcp: None,
                rtcp_mux: true,
                codec: Codec::Pcmu,
                telephone_event: None,
                inband_dtmf: false,
            })
            .await?;

        let mut rtc = RtcConfig::new()
            .set_ice_lite(true)
            .clear_codecs()
            .enable_pcmu(true, false)
            .set_crypto_provider(Arc::new(str0m::crypto::from_feature_flags()))
            .build(Instant::now());
        let host = Candidate::host(candidate, "udp").map_err(|error| WebRtcError::Offer(error.to_string()))?;
        rtc.add_local_candidate(host);
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|error| WebRtcError::Offer(error.to_string()))?;

        let (stop, stopped) = mpsc::channel(1);
        let (ended_sender, ended) = watch::channel(false);
        let gateway = Gateway {
            rtc,
            browser,
            local: candidate,
            inner,
            session_address,
            mid: None,
            pcmu: None,
            sequence: rand::random(),
            ssrc: rand::random(),
            connected: false,
            gone: false,
            _lease: lease,
        };
        let gateway = tokio::spawn(gateway.run(stopped, ended_sender));
        Ok((WebRtcLeg { session, stop, ended, gateway }, answer.to_sdp_string()))
    }
}

struct Gateway {
    rtc: Rtc,
    /// Towards the browser; `local` is its address in the answer's candidate.
    browser: UdpSocket,
    local: SocketAddr,
    /// Towards the session, on loopback.
    inner: UdpSocket,
    session_address: SocketAddr,
    /// The browser's audio m-line and PCMU's payload type in it, once negotiated.
    mid: Option<Mid>,
    pcmu: Option<Pt>,
    /// The line of the RTP sent to the session: the browser's stream, renumbered.
    sequence: u16,
    ssrc: u32,
    connected: bool,
    /// The browser has gone, or str0m failed: the loop ends.
    gone: bool,
    /// Declared last, so dropped last: the socket closes before the port goes back.
    _lease: super::ports::PortLease,
}

impl Gateway {
    async fn run(mut self, mut stop: mpsc::Receiver<()>, ended: watch::Sender<bool>) {
        let connect_by = Instant::now() + CONNECT_WITHIN;
        let mut browser_buffer = [0u8; MAX_DATAGRAM];
        let mut inner_buffer = [0u8; MAX_DATAGRAM];
        loop {
            let deadline = self.drain();
            if self.gone {
                break;
            }
            let deadline = if self.connected { deadline } else { deadline.min(connect_by) };
            tokio::select! {
                _ = stop.recv() => break,
                ready = self.browser.readable() => {
                    if ready.is_err() {
                        break;
                    }
                    for _ in 0..BATCH {
                        match self.browser.try_recv_from(&mut browser_buffer) {
                            Ok((length, from)) => self.on_browser_datagram(from, &browser_buffer[..length]),
                            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                            Err(_) => {}
                        }
                        self.drain();
                        if self.gone {
                            break;
                        }
                    }
                },
                ready = self.inner.readable() => {
                    if ready.is_err() {
                        break;
                    }
                    for _ in 0..BATCH {
                        match self.inner.try_recv_from(&mut inner_buffer) {
                            Ok((length, from)) if from == self.session_address => {
                                self.on_session_datagram(&inner_buffer[..length]);
                            }
                            Ok(_) => {}
                            Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                            Err(_) => {}
                        }
                    }
                },
                () = tokio::time::sleep_until(deadline.into()) => {
                    let now = Instant::now();
                    if !self.connected && now >= connect_by {
                        tracing::info!("a browser's softphone did not connect");
                        break;
                    }
                    if self.rtc.handle_input(Input::Timeout(now)).is_err() {
                        break;
                    }
                },
            }
        }
        self.rtc.disconnect();
        let _ = ended.send(true);
    }

    /// Sends what str0m has to send and handles its events, until str0m's next deadline.
    fn drain(&mut self) -> Instant {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(at)) => {
                    self.gone |= !self.rtc.is_alive();
                    return at;
                }
                Ok(Output::Transmit(transmit)) => {
                    // A send that would block is dropped, as a late packet would be worthless.
                    let _ = self.browser.try_send_to(&transmit.contents, transmit.destination);
                }
                Ok(Output::Event(event)) => match event {
                    Event::Connected => self.connected = true,
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => self.gone = true,
                    Event::MediaAdded(added) => {
                        self.mid = Some(added.mid);
                        self.pcmu = self.rtc.writer(added.mid).and_then(|writer| {
                            writer
                                .payload_params()
                                .find(|params| params.spec().codec == WebRtcCodec::PCMU)
                                .map(|params| params.pt())
                        });
                    }
                    Event::MediaData(data) => self.send_to_session(data.time, &data.data),
                    _ => {}
                },
                Err(error) => {
                    tracing::info!(%error, "a browser's softphone failed");
                    self.gone = true;
                    return Instant::now();
                }
            }
        }
    }

    fn on_browser_datagram(&mut self, from: SocketAddr, datagram: &[u8]) {
        let Ok(contents) = datagram.try_into() else { return };
        let input = Input::Receive(
            Instant::now(),
            Receive { proto: Protocol::Udp, source: from, destination: self.local, contents },
        );
        if self.rtc.accepts(&input) && self.rtc.handle_input(input).is_err() {
            self.rtc.disconnect();
        }
    }

    /// The browser's audio, as plain RTP to the session.
    fn send_to_session(&mut self, time: MediaTime, payload: &[u8]) {
        let timestamp = if time.denom() == 8000 { time.numer() } else { time.numer() * 8000 / u64::from(time.denom()) };
        let header = RtpHeader {
            marker: false,
            payload_type: Codec::Pcmu.payload_type(),
            sequence: self.sequence,
            timestamp: timestamp as u32,
            ssrc: self.ssrc,
        };
        self.sequence = self.sequence.wrapping_add(1);
        let mut datagram = [0u8; MAX_DATAGRAM];
        let Ok(length) = header.write(payload, &mut datagram) else { return };
        let _ = self.inner.try_send_to(&datagram[..length], self.session_address);
    }

    /// The session's RTP, as SRTP to the browser. The session's RTCP stays here: str0m reports
    /// to the browser itself.
    fn on_session_datagram(&mut self, datagram: &[u8]) {
        if datagram.len() < HEADER_LEN || is_rtcp(datagram) {
            return;
        }
        let (Some(mid), Some(pt)) = (self.mid, self.pcmu) else { return };
        let Ok(packet) = RtpPacket::parse(datagram) else { return };
        if packet.payload_type != Codec::Pcmu.payload_type() {
            return;
        }
        let Some(writer) = self.rtc.writer(mid) else { return };
        let time = MediaTime::new(u64::from(packet.timestamp), Frequency::EIGHT_KHZ);
        if let Err(error) = writer.write(pt, Instant::now(), time, packet.payload) {
            tracing::debug!(%error, "audio to a browser was dropped");
        }
    }
}
