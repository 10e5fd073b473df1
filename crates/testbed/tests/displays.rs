//! The display helpers start servers that really answer RFB on loopback.

use std::io::Read;
use std::net::TcpStream;
use std::time::Duration;

use testbed::{Display, DisplayKind};

fn banner(port: u16) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 12];
    s.read_exact(&mut buf).unwrap();
    String::from_utf8_lossy(&buf).into_owned()
}

#[test]
fn xvnc_answers_rfb() {
    let d = Display::xvnc(640, 480).unwrap();
    assert_eq!(d.kind(), DisplayKind::Xvnc);
    assert!(banner(d.port()).starts_with("RFB 003."));
}

#[test]
fn x11vnc_restarts_on_the_same_port() {
    let mut d = Display::x11vnc(640, 480).unwrap();
    assert!(banner(d.port()).starts_with("RFB 003."));
    d.restart_vnc(Duration::from_millis(100)).unwrap();
    assert!(banner(d.port()).starts_with("RFB 003."));
}

#[test]
fn windows_can_be_waited_for() {
    let d = Display::xvnc(640, 480).unwrap();
    let mut cmd = d.command("zenity");
    cmd.args(["--info", "--title", "testbed probe", "--text", "hello"]);
    let _w = d.spawn("zenity", cmd).unwrap();
    d.wait_for_window("testbed probe", Duration::from_secs(20)).unwrap();
}

#[test]
fn password_files_exist_in_both_forms() {
    let d = Display::start(testbed::x11::DisplayOptions {
        kind: DisplayKind::Xvnc,
        width: 320,
        height: 240,
        password: Some("s3cret".into()),
        ..Default::default()
    })
    .unwrap();
    let plain = d.plain_password_file().unwrap();
    assert_eq!(std::fs::read_to_string(plain).unwrap(), "s3cret");
    assert_eq!(std::fs::read(d.password_file().unwrap()).unwrap().len(), 8, "vncpasswd -f writes 8 bytes");
}
