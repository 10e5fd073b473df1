//! Throwaway QEMU guests made from Debian packages, for `vmkit demo`, the tests and the benchmarks: packages
//! fetched with apt into a cache and read from their archives ([`debian`]), kernel modules and their
//! dependencies ([`kmod`]), a newc cpio writer and the busybox guest built with it ([`initramfs`]).
//!
//! Why a crate of its own: the tests of the screen layer (`rfb`, `ocr`) and of QEMU supervision boot this guest;
//! they must not compile the image builder to get it. It imports only `qemu` (the launch command) and `store`
//! (the cache root and lock files).

pub mod debian;
pub mod initramfs;
pub mod kmod;

pub use debian::{Apt, DebArchive, DebPackage, DebianError};
pub use initramfs::{BusyboxGuest, GuestError, GuestManifest, GuestSpec};
