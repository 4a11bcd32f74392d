//! The load generator of `bench/media-relay.sh`: two phones per call, each sending 20 ms PCMU
//! packets (50 a second) to its side of a relay (loket's `relay_server` or rtpengine) and timing
//! what arrives from the other side.
//!
//! Usage: `rtp_load CALLS_FILE PHONE_BASE SECONDS RELAY_PID`
//!
//! CALLS_FILE has one line per call: the relay ports phone A and phone B send to. Phones bind
//! 127.0.0.1:PHONE_BASE + 4i and + 4i + 2. After a second of warm-up, a window of SECONDS is
//! measured: the relay's CPU time (from /proc/RELAY_PID/stat) against the packets it delivered in
//! the window, and the interval between consecutive packets at each phone. Then the senders stop,
//! in-flight packets get half a second, and every stream's delivered count is compared with what
//! its sender sent. Prints one `key=value` line.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::{Instant, sleep_until};

/// Inter-arrival histogram: 0.1 ms buckets up to 1 s, the last one holding everything longer.
const BUCKETS: usize = 10_000;
const BUCKET_US: u64 = 100;
const PERIOD: Duration = Duration::from_millis(20);
/// Senders are spread over this many 1 ms slots of the 20 ms period, as real calls would be.
const SLOTS: usize = 20;
const WARM_UP: Duration = Duration::from_secs(1);

struct Phone {
    socket: UdpSocket,
    relay: SocketAddr,
    sent: AtomicU64,
}

struct Received {
    total: u64,
    in_window: u64,
    histogram: Vec<u32>,
}

#[tokio::main]
async fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let [calls_file, phone_base, seconds, pid] = arguments.as_slice() else {
        eprintln!("usage: rtp_load CALLS_FILE PHONE_BASE SECONDS RELAY_PID");
        std::process::exit(2);
    };
    let phone_base: u16 = phone_base.parse().expect("a port");
    let window = Duration::from_secs(seconds.parse().expect("seconds"));
    let calls = std::fs::read_to_string(calls_file).expect("the calls file");
    let mut phones = Vec::new();
    for (call, line) in calls.lines().enumerate() {
        let mut ports = line.split_whitespace().map(|port| port.parse::<u16>().expect("a port"));
        let (Some(a), Some(b)) = (ports.next(), ports.next()) else { panic!("bad line {line:?}") };
        for (offset, relay) in [(0, a), (2, b)] {
            let local = SocketAddr::from((Ipv4Addr::LOCALHOST, phone_base + 4 * call as u16 + offset));
            phones.push(Arc::new(Phone {
                socket: UdpSocket::bind(local).await.expect("a free phone port"),
                relay: SocketAddr::from((Ipv4Addr::LOCALHOST, relay)),
                sent: AtomicU64::new(0),
            }));
        }
    }

    let start = Instant::now() + Duration::from_millis(100);
    let window_start = start + WARM_UP;
    let window_end = window_start + window;
    let stop = Arc::new(AtomicBool::new(false));

    let receivers: Vec<_> = phones
        .iter()
        .map(|phone| tokio::spawn(receive(Arc::clone(phone), window_start, window_end, Arc::clone(&stop))))
        .collect();
    let senders: Vec<_> = (0..SLOTS)
        .map(|slot| {
            let mine: Vec<Arc<Phone>> = phones.iter().skip(slot).step_by(SLOTS).cloned().collect();
            tokio::spawn(send(mine, start + Duration::from_millis(slot as u64), window_end))
        })
        .collect();

    sleep_until(window_start).await;
    let cpu_start = cpu_ticks(pid);
    sleep_until(window_end).await;
    let cpu_end = cpu_ticks(pid);
    let rss_kib = rss_kib(pid);
    for sender in senders {
        sender.await.expect("a sender");
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);

    // Phone 2i receives what phone 2i+1 sent, and the other way round.
    let mut histogram = vec![0u64; BUCKETS];
    let (mut in_window, mut streams_clean, mut lost) = (0u64, 0usize, 0u64);
    for (index, receiver) in receivers.into_iter().enumerate() {
        let received = receiver.await.expect("a receiver");
        let sent = phones[index ^ 1].sent.load(Ordering::Relaxed);
        in_window += received.in_window;
        lost += sent.saturating_sub(received.total);
        streams_clean += usize::from(received.total >= sent);
        for (total, count) in histogram.iter_mut().zip(&received.histogram) {
            *total += u64::from(*count);
        }
    }
    let intervals: u64 = histogram.iter().sum();
    let percentile = |fraction: f64| {
        let rank = (intervals as f64 * fraction).ceil() as u64;
        let mut seen = 0;
        for (bucket, count) in histogram.iter().enumerate() {
            seen += count;
            if seen >= rank.max(1) {
                return (bucket as u64 + 1) * BUCKET_US;
            }
        }
        BUCKETS as u64 * BUCKET_US
    };
    let ticks_per_second = 100.0; // USER_HZ on Linux
    let cpu_seconds = (cpu_end - cpu_start) as f64 / ticks_per_second;
    println!(
        "streams={} streams_without_loss={} lost_packets={} window_s={} relayed_in_window={} \
         relayed_per_s={:.0} cpu_pct={:.1} cpu_us_per_packet={:.2} p50_interval_ms={:.1} p99_interval_ms={:.1} \
         max_interval_ms={:.1} relay_rss_kib={}",
        phones.len(),
        streams_clean,
        lost,
        window.as_secs(),
        in_window,
        in_window as f64 / window.as_secs_f64(),
        100.0 * cpu_seconds / window.as_secs_f64(),
        cpu_seconds * 1e6 / in_window.max(1) as f64,
        percentile(0.5) as f64 / 1000.0,
        percentile(0.99) as f64 / 1000.0,
        percentile(1.0) as f64 / 1000.0,
        rss_kib,
    );
}

/// Sends the next packet of each phone every 20 ms from `first`, on a drift-free schedule.
async fn send(phones: Vec<Arc<Phone>>, first: Instant, until: Instant) {
    let mut datagram = [0xFFu8; 172];
    datagram[0] = 0x80;
    datagram[1] = 0;
    let mut index: u32 = 0;
    loop {
        let due = first + PERIOD * index;
        if due >= until {
            return;
        }
        sleep_until(due).await;
        datagram[2..4].copy_from_slice(&(index as u16).to_be_bytes());
        datagram[4..8].copy_from_slice(&index.wrapping_mul(160).to_be_bytes());
        for (number, phone) in phones.iter().enumerate() {
            datagram[8..12].copy_from_slice(&(number as u32 + 1).to_be_bytes());
            if phone.socket.try_send_to(&datagram, phone.relay).is_ok() {
                phone.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
        index += 1;
    }
}

async fn receive(phone: Arc<Phone>, window_start: Instant, window_end: Instant, stop: Arc<AtomicBool>) -> Received {
    let mut received = Received { total: 0, in_window: 0, histogram: vec![0; BUCKETS] };
    let mut buffer = [0u8; 1500];
    let mut previous: Option<Instant> = None;
    loop {
        // Wake up now and then to see whether the run is over.
        let Ok(result) = tokio::time::timeout(Duration::from_millis(100), phone.socket.recv_from(&mut buffer)).await
        else {
            if stop.load(Ordering::Relaxed) {
                return received;
            }
            continue;
        };
        let Ok((length, _)) = result else { continue };
        let now = Instant::now();
        // Only RTP counts: a relay's RTCP (packet types 200 and up) would skew the intervals.
        if length < 12 || buffer[1] >= 200 {
            continue;
        }
        received.total += 1;
        if now >= window_start && now < window_end {
            received.in_window += 1;
            if let Some(previous) = previous.filter(|previous| *previous >= window_start) {
                let bucket = ((now - previous).as_micros() as u64 / BUCKET_US) as usize;
                received.histogram[bucket.min(BUCKETS - 1)] += 1;
            }
        }
        previous = Some(now);
    }
}

/// utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the relay is running");
    // The command name may hold spaces; the fields after it are counted from its ')'.
    let after_name = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

fn rss_kib(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}
