//! QEMU's option-list syntax (`driver,key=value,key=value`), rendered with correct escaping.
//!
//! QEMU splits an option list at commas and reads a doubled comma as a literal one, so every value (a path, a
//! password-free string from a user) has its commas doubled. The first element may be an *implied* value (the
//! driver of `-device`, the backend of `-chardev`, the display of `-vnc`); QEMU reads it as `key=value` if it
//! contains `=`, so such a head is rejected instead of silently misparsed. Keys are fixed by vmkit or checked to
//! be plain identifiers.
//!
//! Everything works on bytes (`OsStr`), because paths need not be UTF-8.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use crate::model::ModelError;

/// One QEMU option list under construction, e.g. the value of `-drive` or `-device`.
#[derive(Debug, Clone, Default)]
pub(crate) struct OptList {
    buf: Vec<u8>,
}

impl OptList {
    /// A list that starts with an implied value (`virtio-net-pci`, `socket`, `127.0.0.1:1`).
    pub(crate) fn with_head(what: &str, head: impl AsRef<OsStr>) -> Result<Self, ModelError> {
        let head = head.as_ref();
        if head.as_bytes().contains(&b'=') {
            return Err(ModelError::Invalid {
                what: what.to_owned(),
                value: head.to_string_lossy().into_owned(),
                reason: "must not contain '=' (QEMU would read it as key=value)".to_owned(),
            });
        }
        if head.is_empty() {
            return Err(ModelError::Invalid {
                what: what.to_owned(),
                value: String::new(),
                reason: "is empty".to_owned(),
            });
        }
        let mut list = Self::default();
        push_escaped(&mut list.buf, head.as_bytes());
        Ok(list)
    }

    /// A list without an implied value (`-drive`, `-global`).
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Appends `key=value`; commas in `value` are doubled.
    pub(crate) fn kv(&mut self, key: &str, value: impl AsRef<OsStr>) -> &mut Self {
        if !self.buf.is_empty() {
            self.buf.push(b',');
        }
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.push(b'=');
        push_escaped(&mut self.buf, value.as_ref().as_bytes());
        self
    }

    /// Appends `key=on` or `key=off`.
    pub(crate) fn switch(&mut self, key: &str, on: bool) -> &mut Self {
        self.kv(key, if on { "on" } else { "off" })
    }

    /// Appends `key=value` when `value` is present.
    pub(crate) fn opt_kv(&mut self, key: &str, value: Option<impl AsRef<OsStr>>) -> &mut Self {
        if let Some(v) = value {
            self.kv(key, v);
        }
        self
    }

    /// Appends a bare token (`check`, `+invtsc`), escaped like a value.
    pub(crate) fn token(&mut self, token: impl AsRef<OsStr>) -> &mut Self {
        if !self.buf.is_empty() {
            self.buf.push(b',');
        }
        push_escaped(&mut self.buf, token.as_ref().as_bytes());
        self
    }

    /// The finished option list.
    pub(crate) fn finish(&mut self) -> OsString {
        OsString::from_vec(std::mem::take(&mut self.buf))
    }
}

fn push_escaped(buf: &mut Vec<u8>, value: &[u8]) {
    for &b in value {
        buf.push(b);
        if b == b',' {
            buf.push(b',');
        }
    }
}

/// Checks that `key` (a property name chosen by a caller, e.g. of a `-device`) is a plain identifier QEMU can
/// parse: letters, digits, `-`, `_`, `.`; not empty.
pub(crate) fn check_key(what: &str, key: &str) -> Result<(), ModelError> {
    let ok = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(ModelError::Invalid {
            what: what.to_owned(),
            value: key.to_owned(),
            reason: "a property name must be letters, digits, '-', '_' or '.'".to_owned(),
        })
    }
}

/// Checks an object id (`id=` of a drive, netdev, chardev): QEMU wants a letter first, then letters, digits,
/// `-`, `_`, `.`.
pub(crate) fn check_id(what: &str, id: &str) -> Result<(), ModelError> {
    let mut bytes = id.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
    if first_ok && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        Ok(())
    } else {
        Err(ModelError::Invalid {
            what: what.to_owned(),
            value: id.to_owned(),
            reason: "an id must start with a letter and hold only letters, digits, '-', '_' or '.'".to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commas_in_values_are_doubled() {
        let s = OptList::with_head("device", "virtio-blk-pci").unwrap().kv("serial", "a,b,,c").finish();
        assert_eq!(s, OsString::from("virtio-blk-pci,serial=a,,b,,,,c"));
    }

    #[test]
    fn head_with_equals_is_rejected() {
        assert!(OptList::with_head("vnc display", "unix:/tmp/a=b").is_err());
        assert!(OptList::with_head("device driver", "").is_err());
    }

    #[test]
    fn non_utf8_values_pass_through() {
        let value = OsString::from_vec(vec![b'/', 0xff, b',', b'x']);
        let s = OptList::new().kv("file", &value).finish();
        assert_eq!(s.as_bytes(), b"file=/\xff,,x");
    }

    #[test]
    fn ids_and_keys_are_checked() {
        assert!(check_id("id", "disk0").is_ok());
        assert!(check_id("id", "0disk").is_err());
        assert!(check_id("id", "a,b").is_err());
        assert!(check_key("key", "key-delay-ms").is_ok());
        assert!(check_key("key", "a=b").is_err());
        assert!(check_key("key", "").is_err());
    }
}
