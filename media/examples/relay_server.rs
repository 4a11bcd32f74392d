//! The loket side of `bench/media-relay.sh`: N calls of two bridged sessions each, as the SIP
//! layer will set them up, relaying whatever the load generator (`rtp_load`) sends.
//!
//! Usage: `relay_server CALLS PHONE_BASE PORT_MIN PORT_MAX CALLS_FILE`
//!
//! Call i's legs expect their phones at 127.0.0.1:PHONE_BASE + 4i and PHONE_BASE + 4i + 2 (the
//! SDP addresses; RTCP would be on the odd ports above). When every call is bridged, the file
//! CALLS_FILE gets one line per call, "RTP-port-of-leg-A RTP-port-of-leg-B", and the process
//! relays until it is killed.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use loket_media::edge::{Codec, MediaConfig, MediaEngine, RemoteParams};

#[tokio::main]
async fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [calls, phone_base, port_min, port_max, calls_file] = arguments.as_slice() else {
        eprintln!("usage: relay_server CALLS PHONE_BASE PORT_MIN PORT_MAX CALLS_FILE");
        std::process::exit(2);
    };
    let number = |text: &str| -> u16 { text.parse().expect("a port or a count") };
    let (calls, phone_base) = (number(calls), number(phone_base));
    let engine = MediaEngine::new(MediaConfig {
        bind: Ipv4Addr::LOCALHOST.into(),
        port_min: number(port_min),
        port_max: number(port_max),
        // The benchmark measures relaying; a quiet stream must not end it.
        media_timeout: Duration::from_secs(3600),
        ..MediaConfig::default()
    })
    .expect("a valid configuration");
    let remote = |port: u16| RemoteParams {
        rtp: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        rtcp: None,
        rtcp_mux: false,
        codec: Codec::Pcmu,
        telephone_event: Some(101),
        inband_dtmf: false,
    };
    let mut sessions = Vec::with_capacity(usize::from(calls) * 2);
    let mut lines = String::new();
    for call in 0..calls {
        let a = engine.allocate().expect("a free port pair");
        let b = engine.allocate().expect("a free port pair");
        a.set_remote(remote(phone_base + 4 * call)).await.expect("a running session");
        b.set_remote(remote(phone_base + 4 * call + 2)).await.expect("a running session");
        a.bridge(&b).await.expect("running sessions");
        lines.push_str(&format!("{} {}\n", a.sdp_address().port(), b.sdp_address().port()));
        sessions.push(a);
        sessions.push(b);
    }
    // Written whole, then renamed, so the script never reads half a file.
    let partial = format!("{calls_file}.partial");
    std::fs::write(&partial, lines).expect("a writable calls file");
    std::fs::rename(&partial, calls_file).expect("a writable calls file");
    eprintln!("relay_server: {calls} calls bridged");
    std::future::pending::<()>().await;
}
