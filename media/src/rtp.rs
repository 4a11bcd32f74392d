//! RTP packets (RFC 3550 §5.1): parsing into a borrowed view and building into a caller's buffer.
//!
//! Parsing never panics and never allocates: every length read from the wire is checked against
//! the datagram before it is used, and the payload, CSRC list and extension data are slices of the
//! caller's bytes. Built packets carry the fixed 12-byte header only: a relay gives the packet a
//! new SSRC, so the peer's CSRC list and header extensions (negotiated per leg) do not carry over.

mod sequence;

pub use sequence::{MAX_DROPOUT, MAX_MISORDER, MIN_SEQUENTIAL, SequenceTracker, SequenceVerdict, seq_delta, ts_delta};

/// The only RTP version in use (RFC 3550 §5.1).
pub const VERSION: u8 = 2;
/// The fixed header: V/P/X/CC, M/PT, sequence number, timestamp, SSRC.
pub const HEADER_LEN: usize = 12;

/// A parsed RTP packet borrowing the datagram it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    csrc_bytes: &'a [u8],
    pub extension: Option<HeaderExtension<'a>>,
    /// The payload without the padding (RFC 3550 §5.1, P bit).
    pub payload: &'a [u8],
}

/// The header extension (RFC 3550 §5.3.1): a profile-defined 16-bit value and its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderExtension<'a> {
    pub profile: u16,
    pub data: &'a [u8],
}

/// Why a datagram is not an RTP packet. Peers send garbage; the caller counts and drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("{0} bytes is shorter than the 12-byte RTP header")]
    TooShort(usize),
    #[error("RTP version {0}, expected 2")]
    BadVersion(u8),
    #[error("the CSRC list runs past the end of the datagram")]
    CsrcOverrun,
    #[error("the header extension runs past the end of the datagram")]
    ExtensionOverrun,
    #[error("a padding count of {count} does not fit the {available} bytes after the header")]
    BadPadding { count: u8, available: usize },
}

/// The output buffer cannot hold the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the packet needs {needed} bytes, the buffer holds {available}")]
pub struct BufferTooSmall {
    pub needed: usize,
    pub available: usize,
}

impl<'a> RtpPacket<'a> {
    /// Parses one datagram.
    pub fn parse(datagram: &'a [u8]) -> Result<Self, ParseError> {
        let Some((fixed, rest)) = datagram.split_first_chunk::<HEADER_LEN>() else {
            return Err(ParseError::TooShort(datagram.len()));
        };
        let version = fixed[0] >> 6;
        if version != VERSION {
            return Err(ParseError::BadVersion(version));
        }
        let has_padding = fixed[0] & 0x20 != 0;
        let has_extension = fixed[0] & 0x10 != 0;
        let csrc_count = usize::from(fixed[0] & 0x0F);
        let (csrc_bytes, mut rest) = rest.split_at_checked(csrc_count * 4).ok_or(ParseError::CsrcOverrun)?;

        let mut extension = None;
        if has_extension {
            let (ext_header, after) = rest.split_first_chunk::<4>().ok_or(ParseError::ExtensionOverrun)?;
            // The length counts 32-bit words after the 4-byte extension header.
            let data_len = usize::from(u16::from_be_bytes([ext_header[2], ext_header[3]])) * 4;
            let (data, after) = after.split_at_checked(data_len).ok_or(ParseError::ExtensionOverrun)?;
            extension = Some(HeaderExtension { profile: u16::from_be_bytes([ext_header[0], ext_header[1]]), data });
            rest = after;
        }

        let mut payload = rest;
        if has_padding {
            // The last byte counts the padding including itself, so zero is as invalid as too many.
            let count = rest.last().copied().unwrap_or(0);
            if count == 0 || usize::from(count) > rest.len() {
                return Err(ParseError::BadPadding { count, available: rest.len() });
            }
            payload = &rest[..rest.len() - usize::from(count)];
        }

        Ok(RtpPacket {
            marker: fixed[1] & 0x80 != 0,
            payload_type: fixed[1] & 0x7F,
            sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
            csrc_bytes,
            extension,
            payload,
        })
    }

    /// The contributing sources (RFC 3550 §5.1, at most 15).
    pub fn csrcs(&self) -> impl ExactSizeIterator<Item = u32> + 'a {
        self.csrc_bytes.chunks_exact(4).map(|word| u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
    }

    /// The fixed header fields, to rebuild or rewrite the packet.
    pub fn header(&self) -> RtpHeader {
        RtpHeader {
            marker: self.marker,
            payload_type: self.payload_type,
            sequence: self.sequence,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
        }
    }
}

/// The fixed header of a packet to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    /// 0..=127; the top bit of the byte on the wire is the marker, so a larger value is masked.
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
}

impl RtpHeader {
    /// Writes the header and `payload` at the start of `out`; returns the packet's length.
    pub fn write(&self, payload: &[u8], out: &mut [u8]) -> Result<usize, BufferTooSmall> {
        let needed = HEADER_LEN + payload.len();
        let Some(out) = out.get_mut(..needed) else {
            return Err(BufferTooSmall { needed, available: out.len() });
        };
        let (fixed, body) = out.split_at_mut(HEADER_LEN);
        fixed[0] = VERSION << 6;
        fixed[1] = (u8::from(self.marker) << 7) | (self.payload_type & 0x7F);
        fixed[2..4].copy_from_slice(&self.sequence.to_be_bytes());
        fixed[4..8].copy_from_slice(&self.timestamp.to_be_bytes());
        fixed[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        body.copy_from_slice(payload);
        Ok(needed)
    }
}
