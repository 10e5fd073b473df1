//! The QMP client against a fake server (unit level: the real QEMU is exercised by the model and guest tests):
//! handshake, replies matched by id, typed errors, events, and every way a broken peer can misbehave.

use std::time::Duration;

use qemu::qmp::{Qmp, QmpError, QmpOptions};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

const GREETING: &str = r#"{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}, "package": "Debian 1:7.2"}, "capabilities": ["oob"]}}"#;

struct Fake {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
}

impl Fake {
    async fn send(&mut self, line: &str) {
        self.writer.write_all(line.as_bytes()).await.unwrap();
        self.writer.write_all(b"\r\n").await.unwrap();
    }

    async fn recv(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).await.unwrap();
        serde_json::from_str(&line).unwrap()
    }

    /// Greets and answers `qmp_capabilities`.
    async fn handshake(&mut self) {
        self.send(GREETING).await;
        let cap = self.recv().await;
        assert_eq!(cap["execute"], "qmp_capabilities");
        self.send(&json!({"return": {}, "id": cap["id"]}).to_string()).await;
    }
}

fn options() -> QmpOptions {
    QmpOptions { max_line: 4096, timeout: Duration::from_secs(120) }
}

fn pair() -> (UnixStream, Fake) {
    let (client, server) = UnixStream::pair().unwrap();
    let (r, w) = server.into_split();
    (client, Fake { reader: BufReader::new(r), writer: w })
}

async fn connected() -> (Qmp, Fake) {
    let (client, mut fake) = pair();
    let (qmp, ()) = tokio::join!(Qmp::handshake(client, options()), fake.handshake());
    (qmp.unwrap(), fake)
}

#[tokio::test]
async fn greeting_is_parsed_and_replies_are_matched_by_id() {
    let (qmp, mut fake) = connected().await;
    assert_eq!(qmp.greeting().version.major, 7);
    assert_eq!(qmp.greeting().version.micro, 22);
    assert_eq!(qmp.greeting().package, "Debian 1:7.2");

    // Two commands in flight; the server answers them in reverse order, with an event in between.
    let a = qmp.execute("query-status", None);
    let b = qmp.execute("query-name", None);
    let server = async {
        let first = fake.recv().await;
        let second = fake.recv().await;
        let (status, name) = if first["execute"] == "query-status" { (first, second) } else { (second, first) };
        fake.send(&json!({"return": {"name": "vm"}, "id": name["id"]}).to_string()).await;
        fake.send(r#"{"event": "RESET", "data": {"guest": true}, "timestamp": {"seconds": 1, "microseconds": 2}}"#)
            .await;
        fake.send(&json!({"return": {"status": "running", "running": true}, "id": status["id"]}).to_string()).await;
    };
    let (a, b, ()) = tokio::join!(a, b, server);
    assert_eq!(a.unwrap()["status"], "running");
    assert_eq!(b.unwrap()["name"], "vm");
}

#[tokio::test]
async fn command_errors_carry_class_and_description() {
    let (qmp, mut fake) = connected().await;
    let call = qmp.execute("screendump", Some(json!({"filename": "/nope/x.ppm"})));
    let server = async {
        let cmd = fake.recv().await;
        assert_eq!(cmd["arguments"]["filename"], "/nope/x.ppm");
        fake.send(
            &json!({"error": {"class": "GenericError", "desc": "Could not open '/nope/x.ppm'"}, "id": cmd["id"]})
                .to_string(),
        )
        .await;
    };
    let (r, ()) = tokio::join!(call, server);
    match r.unwrap_err() {
        QmpError::Command { command, class, desc } => {
            assert_eq!(command, "screendump");
            assert_eq!(class, "GenericError");
            assert!(desc.contains("/nope/x.ppm"));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn events_reach_subscribers() {
    let (qmp, mut fake) = connected().await;
    let mut events = qmp.events();
    fake.send(r#"{"event": "POWERDOWN", "timestamp": {"seconds": 5, "microseconds": 6}}"#).await;
    let ev = tokio::time::timeout(Duration::from_secs(5), events.recv()).await.unwrap().unwrap();
    assert_eq!(ev.name, "POWERDOWN");
    assert_eq!(ev.timestamp, Some((5, 6)));
    assert_eq!(ev.data, json!({}));
}

#[tokio::test]
async fn a_closed_connection_fails_waiting_commands_at_once() {
    let (qmp, mut fake) = connected().await;
    let call = qmp.execute("query-status", None);
    let server = async {
        fake.recv().await;
        drop(fake);
    };
    let (r, ()) = tokio::join!(call, server);
    assert!(matches!(r, Err(QmpError::Closed { command: Some(c), .. }) if c == "query-status"));
    assert!(qmp.is_closed());
    // Later commands fail without waiting for a timeout.
    let started = std::time::Instant::now();
    assert!(matches!(qmp.execute("query-status", None).await, Err(QmpError::Closed { .. })));
    assert!(started.elapsed() < Duration::from_secs(30), "waited as for the 120 s timeout");
    // `quit` treats a closed connection as done.
    qmp.quit().await.unwrap();
}

#[tokio::test]
async fn an_overlong_line_is_refused_not_buffered() {
    let (qmp, mut fake) = connected().await;
    let call = qmp.execute("query-status", None);
    let server = async move {
        fake.recv().await;
        // 1 MiB without a newline, limit 4 KiB. The client stops reading, so write from a task of its own.
        tokio::spawn(async move {
            let _ = fake.writer.write_all(&vec![b'x'; 1 << 20]).await;
        });
    };
    let (r, ()) = tokio::join!(call, server);
    let err = r.unwrap_err().to_string();
    assert!(err.contains("longer than 4096 bytes"), "{err}");
}

#[tokio::test]
async fn garbage_instead_of_a_greeting_is_an_error() {
    for garbage in ["hello", "{\"QMP\": 3}", "[1,2]", ""] {
        let (client, mut fake) = pair();
        let server = async {
            if garbage.is_empty() {
                drop(fake);
            } else {
                fake.send(garbage).await;
                // Keep the socket open: the client must fail on the content, not on a close.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        let (r, ()) = tokio::join!(Qmp::handshake(client, options()), server);
        assert!(matches!(r, Err(QmpError::Greeting(_))), "{garbage:?}: {r:?}");
    }
}

#[tokio::test]
async fn malformed_messages_close_the_connection_with_the_reason() {
    let (qmp, mut fake) = connected().await;
    let call = qmp.execute("query-status", None);
    let server = async {
        fake.recv().await;
        fake.send("{\"return\": ").await;
        fake
    };
    let (r, _fake) = tokio::join!(call, server);
    let err = r.unwrap_err().to_string();
    assert!(err.contains("malformed QMP message"), "{err}");
}

#[tokio::test]
async fn a_silent_server_times_out() {
    let (client, mut fake) = pair();
    let (qmp, ()) = tokio::join!(
        Qmp::handshake(client, QmpOptions { max_line: 4096, timeout: Duration::from_millis(300) }),
        fake.handshake()
    );
    let qmp = qmp.unwrap();
    let r = qmp.execute("query-status", None).await;
    assert!(matches!(r, Err(QmpError::Timeout { ref command, .. }) if command == "query-status"), "{r:?}");
    drop(fake);
}

#[tokio::test]
async fn typed_helpers_decode_replies_and_never_show_the_password() {
    let (qmp, mut fake) = connected().await;
    let secret = qemu::Secret::new("hunter2");
    assert_eq!(format!("{secret:?}"), "<redacted>");
    let server = async {
        let cmd = fake.recv().await;
        assert_eq!(cmd["execute"], "change-vnc-password");
        assert_eq!(cmd["arguments"]["password"], "hunter2");
        fake.send(
            &json!({"error": {"class": "GenericError", "desc": "Could not set password"}, "id": cmd["id"]}).to_string(),
        )
        .await;
        let cmd = fake.recv().await;
        assert_eq!(cmd["execute"], "query-tpm");
        fake.send(
            &json!({"return": [{"model": "tpm-crb", "id": "tpm0", "options": {"type": "emulator", "data": {"chardev": "c"}}}], "id": cmd["id"]})
                .to_string(),
        )
        .await;
        let cmd = fake.recv().await;
        assert_eq!(cmd["execute"], "query-status");
        fake.send(&json!({"return": {"status": "inmigrate", "running": false}, "id": cmd["id"]}).to_string()).await;
        let cmd = fake.recv().await;
        assert_eq!(cmd["execute"], "human-monitor-command");
        fake.send(&json!({"return": 17, "id": cmd["id"]}).to_string()).await;
    };
    let client = async {
        let err = qmp.change_vnc_password(&secret).await.unwrap_err().to_string();
        assert!(!err.contains("hunter2"), "{err}");
        let tpm = qmp.query_tpm().await.unwrap();
        assert_eq!(tpm[0].options.data["chardev"], "c");
        let status = qmp.query_status().await.unwrap();
        assert_eq!(status.status, qemu::RunState::Other);
        let err = qmp.human_monitor_command("info status").await.unwrap_err();
        assert!(matches!(err, QmpError::UnexpectedReply { .. }));
    };
    tokio::join!(server, client);
}
