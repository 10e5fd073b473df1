//! The RFB handshake between a viewer and the real server, followed through the recorder.
//!
//! The recorder stands between the two: it passes every byte on, and reads the handshake to know where the
//! message stream starts. It changes three things, and only those:
//! - the security types offered to the viewer are cut down to None and VNC Authentication, the two whose
//!   messages it can follow (anything else — TLS, VeNCrypt — would hide the viewer's input from it); a server
//!   that offers neither is refused, with the reason, to the viewer and to the person recording;
//! - VNC Authentication stays between the viewer and the server: the challenge and the viewer's answer are
//!   passed through unread, so the viewer's password never reaches vmkit;
//! - the viewer's ClientInit asks for a shared session whatever the viewer said, so the server does not drop
//!   the recorder's own connection (the one it reads the screen from).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const SECURITY_NONE: u8 = 1;
const SECURITY_VNC_AUTH: u8 = 2;
/// Longest reason or desktop name passed on.
const MAX_STRING: u32 = 64 * 1024;

/// What the handshake settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The protocol minor version (3, 7 or 8).
    pub minor: u8,
    /// The security type (1 None, 2 VNC Authentication).
    pub security: u8,
    /// The screen size the server announced.
    pub width: u16,
    /// The screen size the server announced.
    pub height: u16,
    /// The desktop name.
    pub name: String,
}

/// Why the handshake did not complete.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// A side closed, failed or was too slow.
    #[error("{doing}: {source}")]
    Io {
        /// What was being done.
        doing: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A side sent something the protocol does not allow.
    #[error("{0}")]
    Protocol(String),
    /// The server refused the connection, or the viewer's authentication.
    #[error("the VNC server refused the viewer: {0}")]
    Refused(String),
}

struct Pipe<'a, V, S> {
    viewer: &'a mut V,
    server: &'a mut S,
    timeout: Duration,
}

async fn timed<T>(
    timeout: Duration,
    doing: &'static str,
    f: impl std::future::Future<Output = std::io::Result<T>>,
) -> Result<T, HandshakeError> {
    match tokio::time::timeout(timeout, f).await {
        Err(_) => Err(HandshakeError::Io { doing, source: std::io::ErrorKind::TimedOut.into() }),
        Ok(r) => r.map_err(|source| HandshakeError::Io { doing, source }),
    }
}

impl<V: AsyncRead + AsyncWrite + Unpin, S: AsyncRead + AsyncWrite + Unpin> Pipe<'_, V, S> {
    async fn read_server<const N: usize>(&mut self, doing: &'static str) -> Result<[u8; N], HandshakeError> {
        let mut buf = [0u8; N];
        timed(self.timeout, doing, self.server.read_exact(&mut buf)).await?;
        Ok(buf)
    }

    async fn read_viewer<const N: usize>(&mut self, doing: &'static str) -> Result<[u8; N], HandshakeError> {
        let mut buf = [0u8; N];
        timed(self.timeout, doing, self.viewer.read_exact(&mut buf)).await?;
        Ok(buf)
    }

    async fn send_viewer(&mut self, bytes: &[u8], doing: &'static str) -> Result<(), HandshakeError> {
        timed(self.timeout, doing, self.viewer.write_all(bytes)).await
    }

    async fn send_server(&mut self, bytes: &[u8], doing: &'static str) -> Result<(), HandshakeError> {
        timed(self.timeout, doing, self.server.write_all(bytes)).await
    }

    /// Reads a length-prefixed string from the server and passes it (with its length) to the viewer.
    async fn relay_string(&mut self, doing: &'static str) -> Result<String, HandshakeError> {
        let len = u32::from_be_bytes(self.read_server::<4>(doing).await?);
        if len > MAX_STRING {
            return Err(HandshakeError::Protocol(format!("{doing}: the server sent a string of {len} bytes")));
        }
        let mut text = vec![0u8; len as usize];
        timed(self.timeout, doing, self.server.read_exact(&mut text)).await?;
        self.send_viewer(&len.to_be_bytes(), doing).await?;
        self.send_viewer(&text, doing).await?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    /// Tells the viewer the connection failed, with a reason (3.7 and 3.8: a count of 0 and the reason).
    async fn refuse_viewer(&mut self, reason: &str) {
        let mut msg = vec![0u8];
        msg.extend_from_slice(&(reason.len() as u32).to_be_bytes());
        msg.extend_from_slice(reason.as_bytes());
        let _ = self.send_viewer(&msg, "telling the viewer why").await;
    }
}

/// Reads `RFB 003.00N\n` and returns N (3, 7, 8 or more).
fn version(line: &[u8; 12], who: &str) -> Result<u8, HandshakeError> {
    let text = String::from_utf8_lossy(line);
    let minor = text
        .strip_prefix("RFB 003.")
        .and_then(|r| r.strip_suffix('\n'))
        .and_then(|m| m.parse::<u16>().ok())
        .ok_or_else(|| HandshakeError::Protocol(format!("the {who} sent {text:?}, not an RFB 3.x version")))?;
    Ok(match minor {
        0..=6 => 3,
        7 => 7,
        _ => 8,
    })
}

/// Why a viewer that must authenticate is refused by a server without a password.
const AUTH_REQUIRED: &str = "the VNC server asks for no password, and a viewer from another machine must \
     authenticate: give the server a password";

/// Runs the handshake between `viewer` and `server` up to and including ServerInit (see the module docs).
/// `require_auth`: only VNC Authentication is offered to the viewer (a viewer from another machine), and a server
/// that asks for no password is refused.
pub async fn relay_handshake<V, S>(
    viewer: &mut V,
    server: &mut S,
    timeout: Duration,
    require_auth: bool,
) -> Result<Negotiated, HandshakeError>
where
    V: AsyncRead + AsyncWrite + Unpin,
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut p = Pipe { viewer, server, timeout };
    let server_line = p.read_server::<12>("reading the server's protocol version").await?;
    let server_minor = version(&server_line, "VNC server")?;
    p.send_viewer(&server_line, "sending the server's version to the viewer").await?;
    let viewer_line = p.read_viewer::<12>("reading the viewer's protocol version").await?;
    let minor = version(&viewer_line, "viewer")?.min(server_minor);
    p.send_server(&viewer_line, "sending the viewer's version to the server").await?;

    let security = if minor == 3 {
        let chosen = u32::from_be_bytes(p.read_server::<4>("reading the security type").await?);
        match chosen {
            0 => {
                p.send_viewer(&0u32.to_be_bytes(), "passing on the refusal").await?;
                let reason = p.relay_string("reading the server's reason").await?;
                return Err(HandshakeError::Refused(reason));
            }
            1 if require_auth => {
                let mut msg = 0u32.to_be_bytes().to_vec();
                msg.extend_from_slice(&(AUTH_REQUIRED.len() as u32).to_be_bytes());
                msg.extend_from_slice(AUTH_REQUIRED.as_bytes());
                let _ = p.send_viewer(&msg, "telling the viewer why").await;
                return Err(HandshakeError::Protocol(AUTH_REQUIRED.to_owned()));
            }
            1 | 2 => {
                p.send_viewer(&chosen.to_be_bytes(), "passing on the security type").await?;
                chosen as u8
            }
            other => {
                let reason = format!(
                    "the VNC server asks for security type {other}; vmkit automate record follows only None (1) and \
                     VNC Authentication (2)"
                );
                let mut msg = 0u32.to_be_bytes().to_vec();
                msg.extend_from_slice(&(reason.len() as u32).to_be_bytes());
                msg.extend_from_slice(reason.as_bytes());
                let _ = p.send_viewer(&msg, "telling the viewer why").await;
                return Err(HandshakeError::Protocol(reason));
            }
        }
    } else {
        let [count] = p.read_server::<1>("reading the number of security types").await?;
        if count == 0 {
            p.send_viewer(&[0], "passing on the refusal").await?;
            let reason = p.relay_string("reading the server's reason").await?;
            return Err(HandshakeError::Refused(reason));
        }
        let mut offered = vec![0u8; usize::from(count)];
        timed(timeout, "reading the security types", p.server.read_exact(&mut offered)).await?;
        let usable: Vec<u8> = offered
            .iter()
            .copied()
            .filter(|t| *t == SECURITY_VNC_AUTH || (*t == SECURITY_NONE && !require_auth))
            .collect();
        if usable.is_empty() && require_auth && offered.contains(&SECURITY_NONE) {
            p.refuse_viewer(AUTH_REQUIRED).await;
            return Err(HandshakeError::Protocol(AUTH_REQUIRED.to_owned()));
        }
        if usable.is_empty() {
            let reason = format!(
                "the VNC server offers security types {offered:?}; vmkit automate record follows only None (1) and \
                 VNC Authentication (2)"
            );
            p.refuse_viewer(&reason).await;
            return Err(HandshakeError::Protocol(reason));
        }
        let mut list = vec![usable.len() as u8];
        list.extend_from_slice(&usable);
        p.send_viewer(&list, "offering the security types to the viewer").await?;
        let [choice] = p.read_viewer::<1>("reading the viewer's security type").await?;
        if !usable.contains(&choice) {
            return Err(HandshakeError::Protocol(format!(
                "the viewer chose security type {choice}, which was not offered ({usable:?})"
            )));
        }
        p.send_server(&[choice], "passing on the viewer's security type").await?;
        choice
    };

    if security == SECURITY_VNC_AUTH {
        let challenge = p.read_server::<16>("reading the authentication challenge").await?;
        p.send_viewer(&challenge, "passing on the challenge").await?;
        let response = p.read_viewer::<16>("reading the viewer's authentication response").await?;
        p.send_server(&response, "passing on the viewer's response").await?;
    }
    if security == SECURITY_VNC_AUTH || minor == 8 {
        let result = p.read_server::<4>("reading the security result").await?;
        p.send_viewer(&result, "passing on the security result").await?;
        if result != [0; 4] {
            let reason = if minor == 8 {
                p.relay_string("reading why authentication failed").await?
            } else {
                "authentication failed".to_owned()
            };
            return Err(HandshakeError::Refused(reason));
        }
    }

    let [_shared] = p.read_viewer::<1>("reading the viewer's ClientInit").await?;
    p.send_server(&[1], "sending ClientInit (shared)").await?;
    let init = p.read_server::<24>("reading ServerInit").await?;
    let width = u16::from_be_bytes([init[0], init[1]]);
    let height = u16::from_be_bytes([init[2], init[3]]);
    let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]);
    if name_len > MAX_STRING {
        return Err(HandshakeError::Protocol(format!("ServerInit: a desktop name of {name_len} bytes")));
    }
    let mut name = vec![0u8; name_len as usize];
    timed(timeout, "reading the desktop name", p.server.read_exact(&mut name)).await?;
    p.send_viewer(&init, "passing on ServerInit").await?;
    p.send_viewer(&name, "passing on the desktop name").await?;
    Ok(Negotiated { minor, security, width, height, name: String::from_utf8_lossy(&name).into_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server's side of a handshake, written out; the viewer's side read back.
    async fn run(
        server_bytes: Vec<u8>,
        viewer_bytes: Vec<u8>,
    ) -> (Result<Negotiated, HandshakeError>, Vec<u8>, Vec<u8>) {
        run_with(server_bytes, viewer_bytes, false).await
    }

    async fn run_with(
        server_bytes: Vec<u8>,
        viewer_bytes: Vec<u8>,
        require_auth: bool,
    ) -> (Result<Negotiated, HandshakeError>, Vec<u8>, Vec<u8>) {
        let (mut viewer, mut viewer_far) = tokio::io::duplex(4096);
        let (mut server, mut server_far) = tokio::io::duplex(4096);
        server_far.write_all(&server_bytes).await.expect("server bytes");
        viewer_far.write_all(&viewer_bytes).await.expect("viewer bytes");
        let result = relay_handshake(&mut viewer, &mut server, Duration::from_millis(300), require_auth).await;
        drop((viewer, server));
        let (mut to_viewer, mut to_server) = (Vec::new(), Vec::new());
        viewer_far.read_to_end(&mut to_viewer).await.expect("read");
        server_far.read_to_end(&mut to_server).await.expect("read");
        (result, to_viewer, to_server)
    }

    fn server_init(name: &str) -> Vec<u8> {
        let mut b = vec![0x07, 0x80, 0x04, 0x38];
        b.extend_from_slice(&[32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
        b.extend_from_slice(&(name.len() as u32).to_be_bytes());
        b.extend_from_slice(name.as_bytes());
        b
    }

    #[tokio::test]
    async fn vnc_auth_passes_through_and_the_session_is_shared() {
        let mut server = b"RFB 003.008\n".to_vec();
        server.extend_from_slice(&[3, 19, 2, 1]); // VeNCrypt, VNC auth, None
        server.extend_from_slice(&[7; 16]);
        server.extend_from_slice(&[0, 0, 0, 0]);
        server.extend(server_init("x11"));
        let mut viewer = b"RFB 003.008\n".to_vec();
        viewer.push(2);
        viewer.extend_from_slice(&[9; 16]);
        viewer.push(0); // exclusive, as some viewers ask
        let (result, to_viewer, to_server) = run(server, viewer).await;
        let n = result.expect("negotiated");
        assert_eq!(n, Negotiated { minor: 8, security: 2, width: 1920, height: 1080, name: "x11".into() });
        let mut expect_viewer = b"RFB 003.008\n".to_vec();
        expect_viewer.extend_from_slice(&[2, 2, 1]);
        expect_viewer.extend_from_slice(&[7; 16]);
        expect_viewer.extend_from_slice(&[0, 0, 0, 0]);
        expect_viewer.extend(server_init("x11"));
        assert_eq!(to_viewer, expect_viewer);
        let mut expect_server = b"RFB 003.008\n".to_vec();
        expect_server.push(2);
        expect_server.extend_from_slice(&[9; 16]);
        expect_server.push(1);
        assert_eq!(to_server, expect_server);
    }

    #[tokio::test]
    async fn rfb_3_3_without_auth() {
        let mut server = b"RFB 003.003\n".to_vec();
        server.extend_from_slice(&[0, 0, 0, 1]);
        server.extend(server_init("q"));
        let mut viewer = b"RFB 003.003\n".to_vec();
        viewer.push(1);
        let (result, _, to_server) = run(server, viewer).await;
        assert_eq!(result.expect("negotiated").minor, 3);
        assert_eq!(to_server.last(), Some(&1));
    }

    #[tokio::test]
    async fn unusable_security_and_failed_auth_are_reported() {
        let mut server = b"RFB 003.008\n".to_vec();
        server.extend_from_slice(&[1, 19]);
        let (result, to_viewer, _) = run(server, b"RFB 003.008\n".to_vec()).await;
        let e = result.expect_err("refused").to_string();
        assert!(e.contains("security types [19]"), "{e}");
        assert_eq!(to_viewer[12], 0, "the viewer is told: no types");

        let mut server = b"RFB 003.008\n".to_vec();
        server.extend_from_slice(&[1, 2]);
        server.extend_from_slice(&[7; 16]);
        server.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 4]);
        server.extend_from_slice(b"nope");
        let mut viewer = b"RFB 003.008\n".to_vec();
        viewer.push(2);
        viewer.extend_from_slice(&[9; 16]);
        let (result, to_viewer, _) = run(server, viewer).await;
        assert!(matches!(result, Err(HandshakeError::Refused(r)) if r == "nope"));
        assert!(to_viewer.ends_with(b"nope"));

        let (result, _, _) = run(b"HTTP/1.1 200".to_vec(), Vec::new()).await;
        assert!(result.expect_err("not rfb").to_string().contains("not an RFB 3.x version"));
    }

    #[tokio::test]
    async fn a_viewer_that_must_authenticate_is_offered_only_vnc_auth() {
        let mut server = b"RFB 003.008\n".to_vec();
        server.extend_from_slice(&[2, 1, 2]);
        server.extend_from_slice(&[7; 16]);
        server.extend_from_slice(&[0, 0, 0, 0]);
        server.extend(server_init("x"));
        let mut viewer = b"RFB 003.008\n".to_vec();
        viewer.push(2);
        viewer.extend_from_slice(&[9; 16]);
        viewer.push(1);
        let (result, to_viewer, _) = run_with(server, viewer, true).await;
        assert_eq!(result.expect("negotiated").security, 2);
        assert_eq!(&to_viewer[12..14], &[1, 2], "only VNC Authentication offered");

        let mut server = b"RFB 003.008\n".to_vec();
        server.extend_from_slice(&[1, 1]);
        let (result, to_viewer, _) = run_with(server, b"RFB 003.008\n".to_vec(), true).await;
        assert!(result.expect_err("refused").to_string().contains("must authenticate"));
        assert_eq!(to_viewer[12], 0);
        let mut server = b"RFB 003.003\n".to_vec();
        server.extend_from_slice(&[0, 0, 0, 1]);
        let (result, _, _) = run_with(server, b"RFB 003.003\n".to_vec(), true).await;
        assert!(result.expect_err("refused").to_string().contains("must authenticate"));
    }
}
