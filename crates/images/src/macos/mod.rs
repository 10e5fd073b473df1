//! macOS images: the machine macOS needs, with the host check before any download ([`machine`]), the GPT boot
//! disk with a FAT32 EFI partition that OpenCore starts from ([`bootdisk`]), OpenCore's files and its
//! `config.plist` from a typed model ([`opencore`]), kexts from pinned releases ([`kexts`]), the identity each
//! image presents ([`smbios`]), the shipped install scripts ([`scripts`]) and the unattended build ([`build`]).
//!
//! The recovery image is fetched and verified by `fetch::macos` (Apple's recovery protocol and signed
//! chunklists) and turned into a raw disk by `media::dmg`.

pub mod bootdisk;
pub mod build;
pub mod kexts;
pub mod machine;
pub mod opencore;
pub mod prepare;
pub mod scripts;
pub mod smbios;
pub mod source;
