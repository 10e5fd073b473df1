//! Only libvirt's "no such …" answers mean absent: a connection that drops mid-way (a `qemu+ssh://` link going
//! down) is an error, never "no VM named X" and never a plan to define what exists.
//!
//! The test talks to the real daemon through a Unix-socket relay it can cut: libvirt's client connects to the relay
//! (`qemu+unix:///system?socket=…`), the relay passes bytes to libvirtd's socket, and cutting it is exactly what a
//! dropped remote connection looks like to the client.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use desktop::libvirt::{Libvirt, LibvirtError};
use desktop::model::FirmwarePaths;
use desktop::{LoadOptions, load_str};

const DAEMON_SOCKET: &str = "/run/libvirt/libvirt-sock";

/// Relays one connection from `listener` to libvirtd; returns the two streams so the test can cut them.
fn relay(listener: UnixListener) -> std::thread::JoinHandle<(UnixStream, UnixStream)> {
    std::thread::spawn(move || {
        let (client, _) = listener.accept().expect("accept");
        let daemon = UnixStream::connect(DAEMON_SOCKET).expect("libvirtd socket");
        for (mut from, mut to) in [
            (client.try_clone().expect("clone"), daemon.try_clone().expect("clone")),
            (daemon.try_clone().expect("clone"), client.try_clone().expect("clone")),
        ] {
            std::thread::spawn(move || {
                let mut buf = [0u8; 65536];
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 || to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(std::net::Shutdown::Both);
            });
        }
        (client, daemon)
    })
}

#[test]
fn a_dropped_connection_is_an_error_not_an_absent_vm() {
    testbed::libvirt::ensure_libvirtd().unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().expect("tmp");
    let socket = dir.path().join("relay.sock");
    let listener = UnixListener::bind(&socket).expect("bind");
    let streams = relay(listener);
    let uri = format!("qemu+unix:///system?socket={}", socket.display());
    let lv = Libvirt::connect(&uri).unwrap_or_else(|e| panic!("{e}"));
    let missing = testbed::libvirt::unique_name("vmkit-absent");

    // Connected: an unknown name is absent.
    assert!(matches!(lv.vm(&missing), Err(LibvirtError::NoSuchVm(_))), "a live connection says absent");

    // The link goes down.
    let (client, daemon) = streams.join().expect("relay");
    client.shutdown(std::net::Shutdown::Both).expect("cut");
    daemon.shutdown(std::net::Shutdown::Both).expect("cut");

    match lv.vm(&missing) {
        Err(LibvirtError::NoSuchVm(_)) => panic!("a dropped connection was read as \"no VM named {missing}\""),
        Err(e) => assert!(e.to_string().contains("looking up domain"), "{e}"),
        Ok(_) => panic!("a lookup over a dropped connection succeeded"),
    }
    let opts = LoadOptions {
        check_paths: false,
        firmware: FirmwarePaths::debian(),
        virtiofsd: "/usr/lib/qemu/virtiofsd".into(),
    };
    let toml = format!("[vms.{missing}]\nmemory = \"512M\"\nvcpus = 1\n");
    let cfg = load_str("t.toml", &toml, desktop::Format::Toml, &opts).unwrap_or_else(|e| panic!("{e}")).config;
    match lv.plan(&cfg, false) {
        Ok(plan) => panic!("planned over a dropped connection: {:?}", plan.actions),
        Err(e) => assert!(!matches!(e, LibvirtError::NoSuchVm(_)), "{e}"),
    }
    assert!(Path::new(DAEMON_SOCKET).exists());
}
