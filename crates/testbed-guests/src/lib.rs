//! QEMU guests for vmkit's integration tests, and the test artefacts made with vmkit's own readers.
//!
//! The servers (Xvnc, sshd, libvirtd, HTTP, …) live in `testbed`, which imports no vmkit crate; what boots a
//! QEMU guest lives here, so a test of a leaf crate pays for QEMU's command model and the Debian guest builder
//! (`debguest`) only, never for the image builder:
//! - [`guest`]: the busybox guest with VNC, QMP and a serial log; [`input_log`]: one that logs the pointer
//!   buttons it receives (USB tablet or PS/2 mouse);
//! - [`udif`]: UDIF disk images (.dmg) for the DMG reader and the macOS prepare tests;
//! - `windows_standin` (feature `windows`, which imports `images` for the exact PowerShell the Windows build
//!   sends): a stand-in for Windows install media.

pub mod guest;
pub mod input_log;
pub mod macos_standin;
pub mod standin;
pub mod udif;
#[cfg(feature = "windows")]
pub mod windows_standin;

pub use guest::{Guest, GuestFile, GuestOptions};
