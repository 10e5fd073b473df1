//! Initramfs images: a newc cpio writer ([`cpio`]) and the throwaway busybox test guest built with it
//! ([`busybox`]).

pub mod busybox;
pub mod cpio;
pub mod launch;

pub use busybox::{BusyboxGuest, GuestError, GuestManifest, GuestSpec};
pub use cpio::{Archive, CpioError};
pub use launch::Launch;
