//! The floor of `bench/media-relay.sh`: the cheapest relay that reads and writes each packet with
//! a system call. One thread, one epoll set (mio), every socket registered for reading only; a
//! datagram that arrives on a call's socket A goes out unchanged from its socket B to phone B,
//! and back. No latching, rewriting, statistics, DTMF or timers: it looks at nothing. What it
//! costs per packet is the kernel's part of any such relay, loket's and rtpengine's alike.
//!
//! Usage: `floor_relay CALLS PHONE_BASE PORT_MIN CALLS_FILE`, with the phones where
//! `relay_server` expects them (call i: PHONE_BASE + 4i and + 4i + 2).

use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

fn main() -> std::io::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [calls, phone_base, port_min, calls_file] = arguments.as_slice() else {
        eprintln!("usage: floor_relay CALLS PHONE_BASE PORT_MIN CALLS_FILE");
        std::process::exit(2);
    };
    let number = |text: &str| -> u16 { text.parse().expect("a port or a count") };
    let (calls, phone_base, port_min) = (number(calls), number(phone_base), number(port_min));
    let mut poll = Poll::new()?;
    // Socket 2i is call i's side A, 2i + 1 its side B; each sends to its own phone.
    let mut sockets = Vec::with_capacity(usize::from(calls) * 2);
    let mut phones = Vec::with_capacity(usize::from(calls) * 2);
    let mut lines = String::new();
    for index in 0..calls * 2 {
        let local = SocketAddr::from((Ipv4Addr::LOCALHOST, port_min + 2 * index));
        let mut socket = UdpSocket::bind(local)?;
        poll.registry().register(&mut socket, Token(usize::from(index)), Interest::READABLE)?;
        sockets.push(socket);
        phones.push(SocketAddr::from((Ipv4Addr::LOCALHOST, phone_base + 4 * (index / 2) + 2 * (index % 2))));
        if index % 2 == 1 {
            lines.push_str(&format!("{} {}\n", local.port() - 2, local.port()));
        }
    }
    let partial = format!("{calls_file}.partial");
    std::fs::write(&partial, lines)?;
    std::fs::rename(&partial, calls_file)?;
    eprintln!("floor_relay: {calls} calls");
    let mut events = Events::with_capacity(256);
    let mut buffer = [0u8; 2048];
    loop {
        poll.poll(&mut events, None)?;
        for event in &events {
            let from = event.token().0;
            let to = from ^ 1;
            loop {
                match sockets[from].recv(&mut buffer) {
                    Ok(length) => {
                        let _ = sockets[to].send_to(&buffer[..length], phones[to]);
                    }
                    Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => {}
                }
            }
        }
    }
}
