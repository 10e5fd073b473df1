//! The RFB handshake: version, security (None or VNC Authentication), ClientInit and ServerInit.
//!
//! Runs over any async reader/writer so the tests can script a server. Every read has the connection's timeout
//! and every length is capped before anything is allocated. Version negotiation follows the RFB spec: servers
//! announcing 3.7 get 3.7, 3.8 or anything newer gets 3.8, and any other 3.x is treated as 3.3.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::auth::vnc_auth_response;
use crate::decode::Limits;
use crate::error::{Error, ProtocolError};
use crate::proto::Version;

const SECURITY_INVALID: u8 = 0;
const SECURITY_NONE: u8 = 1;
const SECURITY_VNC_AUTH: u8 = 2;

/// What the server told the client during the handshake.
#[derive(Debug, Clone)]
pub(crate) struct ServerInit {
    pub version: Version,
    pub width: u32,
    pub height: u32,
    pub name: String,
}

/// Reads exactly `buf.len()` bytes within `timeout`.
pub(crate) async fn read_exact<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut [u8],
    timeout: Duration,
    doing: &str,
) -> Result<(), Error> {
    match tokio::time::timeout(timeout, rd.read_exact(buf)).await {
        Err(_) => Err(Error::Timeout { doing: doing.to_owned(), after: timeout }),
        Ok(Err(e)) => Err(Error::lost(doing, e)),
        Ok(Ok(_)) => Ok(()),
    }
}

/// Writes all of `bytes` within `timeout`.
pub(crate) async fn write_all<W: AsyncWrite + Unpin>(
    wr: &mut W,
    bytes: &[u8],
    timeout: Duration,
    doing: &str,
) -> Result<(), Error> {
    match tokio::time::timeout(timeout, wr.write_all(bytes)).await {
        Err(_) => Err(Error::Timeout { doing: doing.to_owned(), after: timeout }),
        Ok(Err(e)) => Err(Error::lost(doing, e)),
        Ok(Ok(())) => Ok(()),
    }
}

struct Io<'a, R, W> {
    rd: &'a mut R,
    wr: &'a mut W,
    timeout: Duration,
    limits: Limits,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Io<'_, R, W> {
    async fn read<const N: usize>(&mut self, doing: &str) -> Result<[u8; N], Error> {
        let mut buf = [0u8; N];
        read_exact(self.rd, &mut buf, self.timeout, doing).await?;
        Ok(buf)
    }

    async fn u32(&mut self, doing: &str) -> Result<u32, Error> {
        Ok(u32::from_be_bytes(self.read::<4>(doing).await?))
    }

    /// A length-prefixed string (reason or desktop name), capped, decoded as UTF-8 with replacement.
    async fn string(&mut self, what: &'static str) -> Result<String, Error> {
        let doing = format!("reading the {what}");
        let len = self.u32(&doing).await?;
        if len > self.limits.max_string {
            return Err(ProtocolError::TooLong { what, len: len.into(), max: self.limits.max_string.into() }.into());
        }
        let mut buf = vec![0u8; len as usize];
        read_exact(self.rd, &mut buf, self.timeout, &doing).await?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }

    async fn write(&mut self, bytes: &[u8], doing: &str) -> Result<(), Error> {
        write_all(self.wr, bytes, self.timeout, doing).await
    }
}

/// Runs the handshake up to and including ServerInit.
pub(crate) async fn handshake<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    rd: &mut R,
    wr: &mut W,
    password: Option<&[u8]>,
    shared: bool,
    timeout: Duration,
    limits: Limits,
) -> Result<ServerInit, Error> {
    let mut io = Io { rd, wr, timeout, limits };
    let line = io.read::<12>("reading the server's protocol version").await?;
    let version = choose_version(&line)?;
    io.write(version.line(), "sending the protocol version").await?;
    tracing::debug!(%version, "RFB version chosen");

    let security = if version == Version::V3_3 {
        match io.u32("reading the security type").await? {
            0 => return Err(Error::Refused { reason: io.string("server's reason for refusing").await? }),
            1 => SECURITY_NONE,
            2 => SECURITY_VNC_AUTH,
            other => return Err(ProtocolError::UnknownSecurityType(other).into()),
        }
    } else {
        let [count] = io.read::<1>("reading the number of security types").await?;
        if count == 0 {
            return Err(Error::Refused { reason: io.string("server's reason for refusing").await? });
        }
        let mut offered = vec![0u8; usize::from(count)];
        read_exact(io.rd, &mut offered, timeout, "reading the security types").await?;
        let chosen = if offered.contains(&SECURITY_NONE) {
            SECURITY_NONE
        } else if offered.contains(&SECURITY_VNC_AUTH) {
            if password.is_none() {
                return Err(Error::PasswordRequired);
            }
            SECURITY_VNC_AUTH
        } else {
            return Err(Error::UnsupportedSecurity { offered });
        };
        io.write(&[chosen], "choosing the security type").await?;
        chosen
    };

    if security == SECURITY_VNC_AUTH {
        let Some(password) = password else { return Err(Error::PasswordRequired) };
        let challenge = io.read::<16>("reading the VNC Authentication challenge").await?;
        io.write(&vnc_auth_response(password, &challenge), "sending the VNC Authentication response").await?;
    }
    // RFB 3.8 always sends a SecurityResult; older versions only after VNC Authentication.
    if security == SECURITY_VNC_AUTH || version == Version::V3_8 {
        match io.u32("reading the security result").await? {
            0 => {}
            code @ (1 | 2) => {
                let reason = if version == Version::V3_8 {
                    // Best effort: a server that closes instead of explaining still failed the authentication.
                    io.string("server's reason for the failed authentication").await.ok()
                } else if code == 2 {
                    Some("too many authentication attempts".to_owned())
                } else {
                    None
                };
                return Err(if security == SECURITY_VNC_AUTH {
                    Error::AuthFailed { reason }
                } else {
                    Error::Refused { reason: reason.unwrap_or_default() }
                });
            }
            other => return Err(ProtocolError::BadSecurityResult(other).into()),
        }
    }
    debug_assert_ne!(security, SECURITY_INVALID);

    io.write(&[u8::from(shared)], "sending ClientInit").await?;
    let init = io.read::<24>("reading ServerInit").await?;
    let width = u32::from(u16::from_be_bytes([init[0], init[1]]));
    let height = u32::from(u16::from_be_bytes([init[2], init[3]]));
    limits.check_size(width, height)?;
    let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]);
    if name_len > limits.max_string {
        return Err(ProtocolError::TooLong {
            what: "desktop name",
            len: name_len.into(),
            max: limits.max_string.into(),
        }
        .into());
    }
    let mut name = vec![0u8; name_len as usize];
    read_exact(io.rd, &mut name, timeout, "reading the desktop name").await?;
    Ok(ServerInit { version, width, height, name: String::from_utf8_lossy(&name).into_owned() })
}

/// Picks the version to speak from the server's 12-byte version line.
fn choose_version(line: &[u8; 12]) -> Result<Version, ProtocolError> {
    let bad = || ProtocolError::BadVersion { got: line.escape_ascii().to_string() };
    if &line[..4] != b"RFB " || line[7] != b'.' || line[11] != b'\n' {
        return Err(bad());
    }
    let number = |digits: &[u8]| -> Result<u32, ProtocolError> {
        if !digits.iter().all(u8::is_ascii_digit) {
            return Err(bad());
        }
        Ok(digits.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let major = number(&line[4..7])?;
    let minor = number(&line[8..11])?;
    Ok(match (major, minor) {
        (3, 7) => Version::V3_7,
        (3, m) if m >= 8 => Version::V3_8,
        (3, m) if m >= 3 => Version::V3_3,
        (m, _) if m > 3 => Version::V3_8,
        _ => return Err(ProtocolError::UnsupportedVersion { major, minor }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let v = |s: &[u8; 12]| choose_version(s);
        assert_eq!(v(b"RFB 003.008\n"), Ok(Version::V3_8));
        assert_eq!(v(b"RFB 003.007\n"), Ok(Version::V3_7));
        assert_eq!(v(b"RFB 003.003\n"), Ok(Version::V3_3));
        assert_eq!(v(b"RFB 003.005\n"), Ok(Version::V3_3));
        assert_eq!(v(b"RFB 003.889\n"), Ok(Version::V3_8));
        assert_eq!(v(b"RFB 005.000\n"), Ok(Version::V3_8));
        assert!(matches!(v(b"RFB 002.000\n"), Err(ProtocolError::UnsupportedVersion { major: 2, minor: 0 })));
        assert!(v(b"HTTP/1.1 200").unwrap_err().to_string().contains("HTTP/1.1 200"));
        assert!(v(b"RFB 00x.008\n").is_err());
    }
}
