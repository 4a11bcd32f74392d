//! What the edge's tests share: an engine on a port range of the test's own, so that tests
//! running in parallel do not share ports, and the far end of a plain RTP leg.
// Each test binary compiles this module and uses a part of it.
#![allow(dead_code)]

use std::net::SocketAddr;

use loket_media::edge::{Codec, MediaConfig, MediaEngine, RemoteParams};

/// An engine on loopback over the 20 port pairs from `first_port`.
pub fn engine(first_port: u16) -> MediaEngine {
    MediaEngine::new(MediaConfig {
        bind: [127, 0, 0, 1].into(),
        port_min: first_port,
        port_max: first_port + 39,
        ..MediaConfig::default()
    })
    .unwrap()
}

/// A phone at `rtp` without telephone-events or RTCP multiplexing.
pub fn remote(rtp: SocketAddr, codec: Codec) -> RemoteParams {
    RemoteParams { rtp, rtcp: None, rtcp_mux: false, codec, telephone_event: None, inband_dtmf: false }
}
