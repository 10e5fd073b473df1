//! VM images for vmkit.
//!
//! Today: Debian binary packages fetched through the host's apt ([`debian`]), kernel module metadata
//! ([`kmod`]), initramfs archives and the throwaway busybox guest built from Debian packages ([`initramfs`]),
//! and the cache they share ([`cache`]). Image builds (fetch with hashes, cloud-init, recipes) build on these.

pub mod boottest;
pub mod build;
pub mod debootstrap;
pub mod fat;
pub mod fsutil;
pub mod guest;
pub mod machine;
pub mod macos;
pub mod manifest;
pub mod recipe;
pub mod tools;
pub mod windows;

pub use debguest::{debian, initramfs, kmod};
pub use store::cache;

pub use cache::{CacheError, cache_root};
pub use debian::{Apt, DebArchive, DebPackage, DebianError};
pub use initramfs::{BusyboxGuest, GuestError, GuestManifest, GuestSpec};
