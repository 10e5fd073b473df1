//! macOS images: the machine macOS needs, with the host check before any download ([`machine`]), the GPT boot
//! disk with a FAT32 EFI partition that OpenCore starts from ([`bootdisk`]), OpenCore's files and its
//! `config.plist` from a typed model ([`opencore`]), and the identity each image presents ([`smbios`]).
//!
//! The recovery image is fetched and verified by `fetch::macos` (Apple's recovery protocol and signed
//! chunklists) and turned into a raw disk by `media::dmg`.

pub mod bootdisk;
pub mod machine;
pub mod opencore;
pub mod prepare;
pub mod smbios;
pub mod source;
