//! A writer of "newc" cpio archives, the format the Linux kernel unpacks as an initramfs.
//!
//! The archive is modelled as a tree ([`Archive`]) and written in path order, which puts every directory before
//! what it contains — the kernel's unpacker does not create missing parents. Parents are added on demand.
//! Owners are root, timestamps are zero, inode numbers count up from 1: the same inputs give the same bytes.
//! Device nodes (e.g. `/dev/console`, needed before devtmpfs is mounted) are plain header fields, so no
//! privileges are needed to write them.
//!
//! Format (per entry): the magic `070701`, thirteen 8-digit hex fields (ino, mode, uid, gid, nlink, mtime,
//! filesize, devmajor, devminor, rdevmajor, rdevminor, namesize including the NUL, check = 0), the name and a
//! NUL padded to a multiple of four, then the data padded to a multiple of four. A `TRAILER!!!` entry ends it.

use std::collections::BTreeMap;
use std::io::Write;

/// A path or entry the archive cannot hold.
#[derive(Debug, thiserror::Error)]
pub enum CpioError {
    /// The path is empty, absolute, has `..`, `.` or empty components, or a NUL.
    #[error("invalid archive path {0:?}: use a relative path of plain components, like bin/busybox")]
    BadPath(String),
    /// Something already sits at the path with another type.
    #[error("{path:?} is already in the archive as a {existing}")]
    Conflict {
        /// The path.
        path: String,
        /// What is there.
        existing: &'static str,
    },
    /// A file too large for the format's 32-bit size field.
    #[error("{path:?} is {size} bytes; newc cpio holds at most 4 GiB per file")]
    TooLarge {
        /// The path.
        path: String,
        /// Its size.
        size: usize,
    },
    /// Writing failed.
    #[error("writing the archive: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Symlink { target: String },
    CharDev { mode: u32, major: u32, minor: u32 },
}

impl Node {
    fn kind(&self) -> &'static str {
        match self {
            Self::Dir { .. } => "directory",
            Self::File { .. } => "file",
            Self::Symlink { .. } => "symlink",
            Self::CharDev { .. } => "character device",
        }
    }
}

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

/// An initramfs under construction.
#[derive(Debug, Clone, Default)]
pub struct Archive {
    nodes: BTreeMap<String, Node>,
}

impl Archive {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a directory (and its parents) with permission bits `mode` (e.g. `0o755`).
    pub fn dir(&mut self, path: &str, mode: u32) -> Result<&mut Self, CpioError> {
        let path = check_path(path)?;
        self.parents(&path)?;
        match self.nodes.get(&path) {
            None | Some(Node::Dir { .. }) => {
                self.nodes.insert(path, Node::Dir { mode: mode & 0o7777 });
                Ok(self)
            }
            Some(other) => Err(CpioError::Conflict { path, existing: other.kind() }),
        }
    }

    /// Adds a regular file with permission bits `mode`.
    pub fn file(&mut self, path: &str, mode: u32, data: impl Into<Vec<u8>>) -> Result<&mut Self, CpioError> {
        let data = data.into();
        let path = check_path(path)?;
        if u32::try_from(data.len()).is_err() {
            return Err(CpioError::TooLarge { path, size: data.len() });
        }
        self.insert(path, Node::File { mode: mode & 0o7777, data })
    }

    /// Adds a symbolic link.
    pub fn symlink(&mut self, path: &str, target: &str) -> Result<&mut Self, CpioError> {
        let path = check_path(path)?;
        if target.is_empty() || target.contains('\0') {
            return Err(CpioError::BadPath(target.to_owned()));
        }
        self.insert(path, Node::Symlink { target: target.to_owned() })
    }

    /// Adds a character device node.
    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> Result<&mut Self, CpioError> {
        let path = check_path(path)?;
        self.insert(path, Node::CharDev { mode: mode & 0o7777, major, minor })
    }

    /// Number of entries (directories included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the archive is empty.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn insert(&mut self, path: String, node: Node) -> Result<&mut Self, CpioError> {
        self.parents(&path)?;
        if let Some(existing) = self.nodes.get(&path)
            && existing.kind() != node.kind()
        {
            return Err(CpioError::Conflict { path, existing: existing.kind() });
        }
        self.nodes.insert(path, node);
        Ok(self)
    }

    fn parents(&mut self, path: &str) -> Result<(), CpioError> {
        let mut end = 0;
        while let Some(pos) = path[end..].find('/') {
            let parent = &path[..end + pos];
            match self.nodes.get(parent) {
                None => {
                    self.nodes.insert(parent.to_owned(), Node::Dir { mode: 0o755 });
                }
                Some(Node::Dir { .. }) => {}
                Some(other) => return Err(CpioError::Conflict { path: parent.to_owned(), existing: other.kind() }),
            }
            end += pos + 1;
        }
        Ok(())
    }

    /// Writes the archive in newc format.
    pub fn write_to<W: Write>(&self, out: &mut W) -> Result<(), CpioError> {
        let mut written = 0usize;
        for (ino, (path, node)) in (1u32..).zip(self.nodes.iter()) {
            let (mode, nlink, data, rdev): (u32, u32, &[u8], (u32, u32)) = match node {
                Node::Dir { mode } => (S_IFDIR | mode, 2, &[], (0, 0)),
                Node::File { mode, data } => (S_IFREG | mode, 1, data, (0, 0)),
                Node::Symlink { target } => (S_IFLNK | 0o777, 1, target.as_bytes(), (0, 0)),
                Node::CharDev { mode, major, minor } => (S_IFCHR | mode, 1, &[], (*major, *minor)),
            };
            written += write_entry(out, path, ino, mode, nlink, data, rdev)?;
        }
        written += write_entry(out, "TRAILER!!!", 0, 0, 1, &[], (0, 0))?;
        // Conventionally padded to a 512-byte block.
        let pad = (512 - written % 512) % 512;
        out.write_all(&vec![0u8; pad])?;
        Ok(())
    }

    /// The archive as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CpioError> {
        let mut v = Vec::new();
        self.write_to(&mut v)?;
        Ok(v)
    }
}

fn write_entry<W: Write>(
    out: &mut W,
    name: &str,
    ino: u32,
    mode: u32,
    nlink: u32,
    data: &[u8],
    rdev: (u32, u32),
) -> Result<usize, CpioError> {
    let size =
        u32::try_from(data.len()).map_err(|_| CpioError::TooLarge { path: name.to_owned(), size: data.len() })?;
    let namesize = u32::try_from(name.len() + 1).map_err(|_| CpioError::BadPath(name.to_owned()))?;
    let fields = [ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0];
    let mut header = String::with_capacity(110);
    header.push_str("070701");
    for f in fields {
        header.push_str(&format!("{f:08x}"));
    }
    out.write_all(header.as_bytes())?;
    out.write_all(name.as_bytes())?;
    out.write_all(&[0])?;
    let mut n = header.len() + name.len() + 1;
    let pad = (4 - n % 4) % 4;
    out.write_all(&[0u8; 3][..pad])?;
    n += pad;
    out.write_all(data)?;
    n += data.len();
    let pad = (4 - n % 4) % 4;
    out.write_all(&[0u8; 3][..pad])?;
    n += pad;
    Ok(n)
}

fn check_path(path: &str) -> Result<String, CpioError> {
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\0')
        && path.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if ok { Ok(path.to_owned()) } else { Err(CpioError::BadPath(path.to_owned())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_paths_are_rejected() {
        let mut a = Archive::new();
        for p in ["", "/abs", "a/../b", "a//b", "./a", "a/\0"] {
            assert!(a.file(p, 0o644, b"x".to_vec()).is_err(), "{p:?}");
        }
    }

    #[test]
    fn parents_come_first_and_conflicts_are_errors() {
        let mut a = Archive::new();
        a.file("etc/acpi/PWRF/00000080", 0o755, b"x".to_vec()).unwrap();
        assert_eq!(a.len(), 4);
        assert!(a.dir("etc/acpi/PWRF/00000080", 0o755).is_err());
        assert!(a.file("etc/acpi/PWRF/00000080/x", 0o644, Vec::new()).is_err());
    }

    #[test]
    fn entries_are_aligned_and_end_with_a_trailer() {
        let mut a = Archive::new();
        a.file("a", 0o644, b"hello".to_vec()).unwrap();
        let bytes = a.to_bytes().unwrap();
        assert_eq!(bytes.len() % 512, 0);
        assert!(bytes.starts_with(b"070701"));
        // header 110 + "a\0" = 112 (aligned), data 5 padded to 8: the trailer starts at 120.
        assert_eq!(&bytes[120..126], b"070701");
        assert_eq!(&bytes[120 + 110..120 + 120], b"TRAILER!!!");
    }
}
