//! What the edge's tests share: an engine on a port range of the test's own, so that tests
//! running in parallel do not share ports, the far end of a plain RTP leg, and a tone's power.
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

/// The power of `frequency` in `samples` at 8 kHz (Goertzel).
pub fn power(samples: &[i16], frequency: f64) -> f64 {
    let coefficient = 2.0 * (2.0 * std::f64::consts::PI * frequency / 8000.0).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &sample in samples {
        let s = f64::from(sample) + coefficient * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - coefficient * s1 * s2
}
