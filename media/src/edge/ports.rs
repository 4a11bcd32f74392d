//! The pool of RTP ports: every even port of the configured range, RTP on it and RTCP on the odd
//! port above (RFC 3550 §11), handed out and returned as a pair.
//!
//! The free list is allocated once, at the size of the range, so the pool cannot grow with
//! traffic. Ports are reused oldest-freed first: a late packet of a call that just ended then
//! finds a closed port rather than the next call. A port another process holds is skipped and
//! put back at the end of the list; it is tried again after every other port.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex, PoisonError};

/// The even ports of a range.
#[derive(Debug)]
pub(crate) struct PortPool {
    free: Mutex<VecDeque<u16>>,
    total: usize,
}

/// A port pair taken from the pool; dropping it gives the pair back.
#[derive(Debug)]
pub(crate) struct PortLease {
    port: u16,
    pool: Arc<PortPool>,
}

/// Why no pair could be bound.
#[derive(Debug)]
pub(crate) enum BindFailure {
    /// Every free pair is in use, by loket or by another process.
    Exhausted,
    /// Binding failed for another reason than a busy port (the address is not local, ...).
    Io(io::Error),
}

impl PortPool {
    /// The pool of the even ports in `min..=max` whose odd neighbour is in the range too.
    pub(crate) fn new(min: u16, max: u16) -> Arc<PortPool> {
        let first = min.next_multiple_of(2);
        let free: VecDeque<u16> = (first..max).step_by(2).collect();
        Arc::new(PortPool { total: free.len(), free: Mutex::new(free) })
    }

    pub(crate) fn total(&self) -> usize {
        self.total
    }

    pub(crate) fn free(&self) -> usize {
        self.lock().len()
    }

    /// Binds the RTP and RTCP sockets of the first free pair on `ip`.
    pub(crate) fn bind(self: &Arc<Self>, ip: IpAddr) -> Result<(UdpSocket, UdpSocket, PortLease), BindFailure> {
        // Each pair is tried at most once per call: a pair busy elsewhere goes to the back.
        for _ in 0..self.total {
            let Some(port) = self.lock().pop_front() else { break };
            let lease = PortLease { port, pool: Arc::clone(self) };
            let bound = UdpSocket::bind(SocketAddr::new(ip, port))
                .and_then(|rtp| Ok((rtp, UdpSocket::bind(SocketAddr::new(ip, port + 1))?)));
            match bound {
                Ok((rtp, rtcp)) => return Ok((rtp, rtcp, lease)),
                Err(error) if error.kind() == io::ErrorKind::AddrInUse => continue,
                Err(error) => return Err(BindFailure::Io(error)),
            }
        }
        Err(BindFailure::Exhausted)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<u16>> {
        // The list is consistent after every push and pop, so a panic elsewhere cannot leave it
        // half-updated.
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl PortLease {
    /// The RTP port; RTCP is on the next.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for PortLease {
    fn drop(&mut self) {
        self.pool.lock().push_back(self.port);
    }
}
