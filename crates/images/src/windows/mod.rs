//! Unattended Windows 10/11 images.
//!
//! A Windows recipe names Microsoft's install ISO, an edition, the VirtIO driver media and a few settings
//! ([`source`]). From them vmkit writes an answer file from a typed model ([`answer`]), puts it on a FAT image
//! that Windows Setup finds by itself ([`crate::fat`]), and boots Setup on a q35 machine with Secure Boot
//! firmware and a TPM 2.0 when asked.
//!
//! Why each piece is the way it is lives with the piece; `docs/windows.md` has the flow, the expected times and
//! what only a real install can show.

pub mod answer;
pub mod build;
pub mod guest;
pub mod machine;
pub mod prepare;
pub mod source;

pub use source::{
    DEFAULT_WINDOWS_DISK, DEFAULT_WINDOWS_MEMORY, EditionChoice, MediaSource, WindowsSource, WindowsVersion,
    validate_computer_name, validate_windows_user,
};
