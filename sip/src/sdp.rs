//! SDP offer/answer (RFC 3264 over RFC 4566) for what loket speaks: one audio stream of G.711
//! (PCMU or PCMA) with RFC 4733 telephone-events, and the direction attributes that put a call on
//! hold and take it off. Pure: text in, text out; no IO. Bad SDP is an [`SdpError`], never a panic.
//!
//! The answer keeps the offerer's payload type numbers (RFC 3264 §6.1: the answerer sends with the
//! numbers the offerer gave), answers every offered stream (port 0 for those it declines, §6), and
//! mirrors the offered direction (§6.1: sendonly is answered recvonly, and so on).

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use thiserror::Error;

#[cfg(test)]
mod tests;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SdpError {
    #[error("malformed SDP: {0}")]
    Malformed(&'static str),
    /// No audio stream offers PCMU or PCMA over RTP/AVP: answered 488 (RFC 3261 §21.4.26).
    #[error("no common codec")]
    NoCommonCodec,
}

/// Which way media flows, from the point of view of the side that wrote the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    /// The direction an answer gives to an offered one (RFC 3264 §6.1).
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }

    /// Whether the peer that wrote this direction is holding the call (RFC 3264 §8.4).
    pub fn is_hold(self) -> bool {
        matches!(self, Direction::SendOnly | Direction::Inactive)
    }

    fn attribute(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }
}

/// The G.711 law chosen for a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Pcmu,
    Pcma,
}

impl Codec {
    fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The static payload type of RFC 3551 table 4.
    fn static_payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }
}

/// One `m=` section as offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    pub kind: String,
    pub port: u16,
    pub proto: String,
    /// The format list as written (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// `a=rtpmap:` entries: payload type, encoding name, clock rate.
    pub rtpmaps: Vec<(u8, String, u32)>,
    pub direction: Option<Direction>,
    /// The section's own `c=` address, if any.
    pub connection: Option<IpAddr>,
}

/// The parts of a session description that offer/answer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    pub connection: Option<IpAddr>,
    /// A session-level `a=` direction, the default for every stream (RFC 4566 §6).
    pub direction: Option<Direction>,
    pub media: Vec<Media>,
}

/// Upper bound on `m=` sections: a real offer has one to three; this bounds the answer's size.
const MAX_MEDIA: usize = 16;

impl Sdp {
    pub fn parse(text: &str) -> Result<Sdp, SdpError> {
        let mut lines = text.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line)).filter(|l| !l.is_empty());
        if lines.next() != Some("v=0") {
            return Err(SdpError::Malformed("the first line is not v=0"));
        }
        let mut sdp = Sdp { connection: None, direction: None, media: Vec::new() };
        for line in lines {
            let (kind, value) = line.split_once('=').ok_or(SdpError::Malformed("a line without ="))?;
            match kind {
                "c" => {
                    let address = parse_connection(value)?;
                    match sdp.media.last_mut() {
                        Some(media) => media.connection = Some(address),
                        None => sdp.connection = Some(address),
                    }
                }
                "m" => {
                    if sdp.media.len() == MAX_MEDIA {
                        return Err(SdpError::Malformed("too many media sections"));
                    }
                    sdp.media.push(parse_media(value)?);
                }
                "a" => {
                    let (name, argument) = value.split_once(':').unwrap_or((value, ""));
                    let direction = match name {
                        "sendrecv" => Some(Direction::SendRecv),
                        "sendonly" => Some(Direction::SendOnly),
                        "recvonly" => Some(Direction::RecvOnly),
                        "inactive" => Some(Direction::Inactive),
                        _ => None,
                    };
                    match (sdp.media.last_mut(), direction) {
                        (Some(media), Some(direction)) => media.direction = Some(direction),
                        (None, Some(direction)) => sdp.direction = Some(direction),
                        (Some(media), None) if name == "rtpmap" => {
                            // An rtpmap we cannot read is ignored like any unknown attribute.
                            media.rtpmaps.extend(parse_rtpmap(argument));
                        }
                        _ => {}
                    }
                }
                // v, o, s, t and the rest carry nothing offer/answer needs here.
                _ if kind.len() == 1 => {}
                _ => return Err(SdpError::Malformed("a line type longer than one letter")),
            }
        }
        Ok(sdp)
    }

    /// The direction of the first active audio stream (sendrecv when none is written), with the
    /// old hold of RFC 2543 (`c=0.0.0.0`) read as inactive.
    pub fn audio_direction(&self) -> Option<Direction> {
        let media = self.media.iter().find(|media| media.kind == "audio" && media.port != 0)?;
        let held = media.connection.or(self.connection).is_some_and(|address| address.is_unspecified());
        let written = media.direction.or(self.direction).unwrap_or(Direction::SendRecv);
        Some(if held { Direction::Inactive } else { written })
    }
}

fn parse_connection(value: &str) -> Result<IpAddr, SdpError> {
    let mut fields = value.split_whitespace();
    let (Some("IN"), Some("IP4" | "IP6"), Some(address)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(SdpError::Malformed("c= is not IN IP4/IP6 ADDRESS"));
    };
    // Multicast's TTL suffix (`/127`) is not for a call; the address is what counts.
    let address = address.split('/').next().unwrap_or(address);
    address.parse().map_err(|_| SdpError::Malformed("c= address is not an IP address"))
}

fn parse_media(value: &str) -> Result<Media, SdpError> {
    let mut fields = value.split_whitespace();
    let (Some(kind), Some(port), Some(proto)) = (fields.next(), fields.next(), fields.next()) else {
        return Err(SdpError::Malformed("m= has fewer than three fields"));
    };
    // `port/count` (RFC 4566 §5.14) is for layered encodings; the first port is the stream's.
    let port = port.split('/').next().unwrap_or(port).parse().map_err(|_| SdpError::Malformed("m= port"))?;
    let formats: Vec<String> = fields.map(str::to_owned).collect();
    if formats.is_empty() {
        return Err(SdpError::Malformed("m= has no formats"));
    }
    Ok(Media {
        kind: kind.to_owned(),
        port,
        proto: proto.to_owned(),
        formats,
        rtpmaps: Vec::new(),
        direction: None,
        connection: None,
    })
}

fn parse_rtpmap(argument: &str) -> Option<(u8, String, u32)> {
    let (payload_type, encoding) = argument.split_once(' ')?;
    let mut parts = encoding.trim().split('/');
    let name = parts.next()?.to_owned();
    let clock = parts.next()?.parse().ok()?;
    Some((payload_type.trim().parse().ok()?, name, clock))
}

/// Where loket receives media and how its descriptions are identified (RFC 4566 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalMedia {
    pub address: IpAddr,
    pub port: u16,
    pub session_id: u64,
}

/// What an answer agreed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    pub codec: Codec,
    /// The offerer's payload type for audio and for telephone-event.
    pub payload_type: u8,
    pub telephone_event: Option<u8>,
    /// What the offer asked for: the answer carries [`Direction::answer`] of it.
    pub offered: Direction,
}

/// The answer to `offer`; `version` is the `o=` session version, which must grow with every new
/// description within a dialog (RFC 3264 §8).
pub fn answer(offer: &str, local: &LocalMedia, version: u64) -> Result<Answer, SdpError> {
    let sdp = Sdp::parse(offer)?;
    let mut chosen = None;
    let mut body = String::new();
    for media in &sdp.media {
        let accepted = if chosen.is_none() && media.kind == "audio" && media.port != 0 && media.proto == "RTP/AVP" {
            pick(media)
        } else {
            None
        };
        match accepted {
            Some((codec, payload_type, telephone_event)) => {
                let offered = sdp.audio_direction().unwrap_or(Direction::SendRecv);
                write_audio(&mut body, local.port, codec, payload_type, telephone_event, offered.answer());
                chosen = Some((codec, payload_type, telephone_event, offered));
            }
            // RFC 3264 §6: a declined stream is answered with port 0 and one of its formats.
            None => {
                let first = media.formats.first().map_or("0", String::as_str);
                let _ = write!(body, "m={} 0 {} {first}\r\n", media.kind, media.proto);
            }
        }
    }
    let (codec, payload_type, telephone_event, offered) = chosen.ok_or(SdpError::NoCommonCodec)?;
    let text = session_header(local, version) + &body;
    Ok(Answer { text, codec, payload_type, telephone_event, offered })
}

/// What a media session needs of the far end's description (an offer loket answers, or the
/// answer to loket's offer): where to send audio, in which law, and its telephone-event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remote {
    pub rtp: SocketAddr,
    pub codec: Codec,
    pub telephone_event: Option<u8>,
}

/// The far end of `text`: its first audio stream's address and port, and the first G.711 law
/// it lists (which is also what [`answer`] chooses from an offer).
pub fn remote(text: &str) -> Result<Remote, SdpError> {
    let sdp = Sdp::parse(text)?;
    let media =
        sdp.media.iter().find(|media| media.kind == "audio" && media.port != 0).ok_or(SdpError::NoCommonCodec)?;
    let address = media.connection.or(sdp.connection).ok_or(SdpError::Malformed("no c= line for the audio"))?;
    let (codec, _, telephone_event) = pick(media).ok_or(SdpError::NoCommonCodec)?;
    Ok(Remote { rtp: SocketAddr::new(address, media.port), codec, telephone_event })
}

/// An offer of PCMA, PCMU and telephone-event, for an INVITE that came without one (RFC 3261
/// §13.2.1: the offer is then in the 2xx and the answer in the ACK).
pub fn offer(local: &LocalMedia, version: u64, direction: Direction) -> String {
    let mut text = session_header(local, version);
    let _ = write!(
        text,
        "m=audio {} RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na={}\r\n",
        local.port,
        direction.attribute()
    );
    text
}

fn session_header(local: &LocalMedia, version: u64) -> String {
    let family = if local.address.is_ipv6() { "IP6" } else { "IP4" };
    format!(
        "v=0\r\no=loket {} {version} IN {family} {}\r\ns=loket\r\nc=IN {family} {}\r\nt=0 0\r\n",
        local.session_id, local.address, local.address
    )
}

/// The offerer's first G.711 format (its order is its preference, RFC 3264 §6.1) and its
/// telephone-event at 8 kHz, if offered.
fn pick(media: &Media) -> Option<(Codec, u8, Option<u8>)> {
    let named = |payload_type: u8| media.rtpmaps.iter().find(|(pt, ..)| *pt == payload_type);
    let mut codec = None;
    let mut telephone_event = None;
    for format in &media.formats {
        let Ok(payload_type) = format.parse::<u8>() else { continue };
        let found = match named(payload_type) {
            Some((_, name, 8_000)) if name.eq_ignore_ascii_case("PCMU") => Some(Codec::Pcmu),
            Some((_, name, 8_000)) if name.eq_ignore_ascii_case("PCMA") => Some(Codec::Pcma),
            Some((_, name, 8_000)) if name.eq_ignore_ascii_case("telephone-event") => {
                telephone_event = telephone_event.or(Some(payload_type));
                None
            }
            Some(_) => None,
            // Static payload types need no rtpmap (RFC 3551 §6).
            None => [Codec::Pcmu, Codec::Pcma].into_iter().find(|codec| codec.static_payload_type() == payload_type),
        };
        if codec.is_none() {
            codec = found.map(|codec| (codec, payload_type));
        }
    }
    codec.map(|(codec, payload_type)| (codec, payload_type, telephone_event))
}

fn write_audio(
    body: &mut String,
    port: u16,
    codec: Codec,
    payload_type: u8,
    telephone_event: Option<u8>,
    direction: Direction,
) {
    let _ = write!(body, "m=audio {port} RTP/AVP {payload_type}");
    if let Some(event) = telephone_event {
        let _ = write!(body, " {event}");
    }
    let _ = write!(body, "\r\na=rtpmap:{payload_type} {}/8000\r\n", codec.name());
    if let Some(event) = telephone_event {
        let _ = write!(body, "a=rtpmap:{event} telephone-event/8000\r\na=fmtp:{event} 0-15\r\n");
    }
    let _ = write!(body, "a=ptime:20\r\na={}\r\n", direction.attribute());
}
