//! Where vmkit keeps files on the host, and how it writes them: the cache root every vmkit cache lives under and the
//! lock files that make a second builder of the same thing wait ([`cache`]); writing a file atomically with a
//! mode, or only if it does not exist yet, whole or streamed ([`atomic`]); a file's SHA-256 ([`digest`]).
//!
//! Why a crate of its own: the image builder, the Debian guest builder, the QEMU accelerator probe and the
//! downloader each keep things in vmkit's cache; the rule for where that is must be written once, and so must the
//! way every file vmkit produces (cache entries, keys, outputs) reaches the disk. This crate is a
//! leaf: it imports no other vmkit crate, so any of them may use it.

pub mod atomic;
pub mod cache;
pub mod digest;

pub use atomic::{NewFile, write_atomic, write_atomic_with, write_new};
pub use cache::{CACHE_DIR_ENV, CacheError, LOCK_WAIT, LockFile, cache_root, ensure_dir};
pub use digest::{sha256_file, sha256_file_hex};
