//! Free loopback ports for QEMU's listeners, and starting QEMU with a retry when a port was taken meanwhile.
//!
//! Checking that a port is free and QEMU binding it are two steps; another process (a parallel test, another
//! VM) can take the port in between. So the check only picks a likely candidate, and
//! [`start_with_port_retry`] treats QEMU's "Address already in use" as a reason to pick again and restart,
//! a bounded number of times.
//!
//! VNC listens on 5900 + display; displays are picked from a pseudo-random starting point (per process and
//! call) so parallel test processes rarely try the same one first.

use std::net::{IpAddr, SocketAddr, TcpListener};

use crate::model::{QemuCommand, VncListen};
use crate::process::{Qemu, QemuError, StartOptions};

/// The first and last VNC display numbers [`free_vnc_display`] considers (ports 6000–9999).
const DISPLAYS: std::ops::RangeInclusive<u16> = 100..=4099;

/// A TCP port on `addr` that was free a moment ago.
pub fn free_tcp_port(addr: IpAddr) -> std::io::Result<u16> {
    let listener = TcpListener::bind(SocketAddr::new(addr, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A VNC display number whose port (5900 + display) on `addr` was free a moment ago.
pub fn free_vnc_display(addr: IpAddr) -> std::io::Result<u16> {
    let span = u32::from(DISPLAYS.end() - DISPLAYS.start()) + 1;
    let start = pseudo_random() % span;
    for i in 0..span {
        let display = DISPLAYS.start() + u16::try_from((start + i) % span).unwrap_or(0);
        if TcpListener::bind(SocketAddr::new(addr, 5900 + display)).is_ok() {
            return Ok(display);
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::AddrInUse, format!("no free VNC display on {addr}")))
}

/// Points the command's VNC listener (if it listens on TCP) at a free display.
pub fn pick_vnc_display(cmd: &mut QemuCommand) -> std::io::Result<()> {
    if let Some(vnc) = cmd.vnc.as_mut()
        && let VncListen::Tcp { addr, display } = &mut vnc.listen
    {
        *display = free_vnc_display(*addr)?;
    }
    Ok(())
}

/// Starts QEMU; when it fails because an address is in use, calls `pick` to choose other ports and tries again,
/// up to `attempts` times in all. `pick` runs before the first attempt too.
pub async fn start_with_port_retry(
    cmd: &mut QemuCommand,
    options: StartOptions,
    attempts: u32,
    mut pick: impl FnMut(&mut QemuCommand) -> std::io::Result<()>,
) -> Result<Qemu, QemuError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        pick(cmd).map_err(|e| QemuError::Spawn { program: "port picker".to_owned(), source: e })?;
        match Qemu::start_with(cmd, options.clone()).await {
            Err(e) if e.is_addr_in_use() && attempt < attempts => {
                tracing::debug!(attempt, "a port was taken meanwhile; retrying with another");
            }
            other => return other,
        }
    }
}

fn pseudo_random() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU32, Ordering};
    static CALLS: AtomicU32 = AtomicU32::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u32(CALLS.fetch_add(1, Ordering::Relaxed));
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    // Truncation intended: any 32 bits of the hash will do.
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn vnc_display_port_is_free() {
        let addr = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let d = free_vnc_display(addr).unwrap();
        assert!(DISPLAYS.contains(&d));
        TcpListener::bind(SocketAddr::new(addr, 5900 + d)).unwrap();
    }
}
