//! macOS images: the machine macOS needs, with the host check before any download ([`machine`]), and the GPT
//! boot disk with a FAT32 EFI partition that OpenCore starts from ([`bootdisk`]).
//!
//! The recovery image is fetched and verified by `fetch::macos` (Apple's recovery protocol and signed
//! chunklists) and turned into a raw disk by `media::dmg`.

pub mod bootdisk;
pub mod machine;
