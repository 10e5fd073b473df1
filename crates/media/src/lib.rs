//! Readers of installation media that arrive from outside: ISO images, Windows install images, driver media.
//!
//! Windows (and later macOS) image builds start from media the user downloaded. Before anything boots, vmkit
//! looks inside them — which editions of Windows an ISO carries, whether the VirtIO driver ISO has the drivers for
//! this Windows — and refuses bad media with what is wrong. Everything here parses hostile input: every read is
//! bounded and checked against the file's size, and every parser has a fuzz target. Nothing prints or exits.
//!
//! - [`iso`]: ISO9660, Joliet and UDF images over a positioned reader ([`ReadAt`]) — look up paths
//!   case-insensitively, list folders, read byte ranges; only the sectors needed are read.
//! - [`wim`]: the WIM/ESD header and its XML, parsed into [`wim::Edition`]s.
//! - [`edition`]: choosing an edition by index or by name (`Pro`, `Enterprise`, …).
//! - [`windows`]: the install image on a Windows ISO ([`windows::inspect_path`]).
//! - [`virtio`]: the VirtIO driver ISO check ([`virtio::check_path`]).
//! - [`sniff`]: what a file that is not an ISO is instead (an HTML page, an archive, …).
//! - [`dmg`]: Apple UDIF disk images (a macOS recovery image) turned into raw disks. (Apple's chunklists, which
//!   verify a download before it enters the cache, live in `fetch::chunklist`.)
//!
//! Formats get one module each (a DMG or chunklist reader belongs beside [`wim`]).
//!
//! ```no_run
//! use media::{edition::EditionSelector, wim::Arch};
//!
//! let media = media::windows::inspect_path("Win11_24H2_English_x64.iso".as_ref())?;
//! let titles: Vec<String> = media.editions.iter().map(|e| format!("{} {}", e.index, e.title())).collect();
//! let pro = media.select(&"Pro".parse::<EditionSelector>()?, Some(Arch::X64))?;
//! let drivers = media::virtio::check_path("virtio-win-0.1.262.iso".as_ref(), "w11", Arch::X64)?;
//! let driver_paths: Vec<&str> = drivers.drivers.iter().map(|d| d.path.as_str()).collect(); // viostor/w11/amd64, …
//! # let _ = (pro, titles, driver_paths);
//! # Ok::<(), media::Error>(())
//! ```

pub mod dmg;
pub mod edition;
mod error;
pub mod iso;
pub mod sniff;
mod source;
pub mod virtio;
pub mod wim;
pub mod windows;

pub use error::{Error, Result};
pub use iso::{Entry, EntryKind, Filesystem, Iso};
pub use source::ReadAt;
