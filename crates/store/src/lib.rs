//! Where vmkit keeps files on the host, and how it writes them: the cache root every vmkit cache lives under and the
//! lock files that make a second builder of the same thing wait ([`cache`]).
//!
//! Why a crate of its own: the image builder, the Debian guest builder, the QEMU accelerator probe and the
//! downloader each keep things in vmkit's cache; the rule for where that is must be written once. This crate is a
//! leaf: it imports no other vmkit crate, so any of them may use it.

pub mod cache;

pub use cache::{CACHE_DIR_ENV, CacheError, LOCK_WAIT, LockFile, cache_root, ensure_dir};
