//! VirtIO driver media: checking that a virtio-win ISO has the drivers Setup needs before anything boots.
//!
//! Windows Setup sees no VirtIO disk and no network without drivers; the answer file points Setup's driver search
//! (`DriverPaths`) at them. virtio-win ISOs lay drivers out as `DRIVER/VERSION/ARCH/` — `viostor/w11/amd64/
//! viostor.inf`, `NetKVM/2k22/amd64/netkvm.inf` — so [`check`] looks for the storage drivers (`viostor`,
//! `vioscsi`) and the network driver (`NetKVM`) for one Windows version folder (`w10`, `w11`, `2k19`, `2k22`,
//! `2k25`, …) and architecture folder (`amd64`, `ARM64`, `x86`), and returns the folders it found. A download that
//! is an HTML page or anything other than an ISO is refused with what it is; missing drivers are listed with the
//! versions and architectures that *are* there.

use std::path::Path;

use crate::error::{Error, Result};
use crate::iso::{Entry, Iso, names_match};
use crate::source::ReadAt;
use crate::wim::Arch;

/// The drivers a Windows install on VirtIO hardware needs: block storage, SCSI storage, network.
pub const REQUIRED_DRIVERS: [&str; 3] = ["viostor", "vioscsi", "NetKVM"];

/// A driver folder found on the media.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DriverDir {
    /// The driver (`viostor`, `vioscsi`, `NetKVM`).
    pub driver: String,
    /// Its folder on the media, as recorded, without a leading slash (`viostor/w11/amd64`).
    pub path: String,
    /// The `.inf` files in it.
    pub infs: Vec<String>,
}

/// What the driver media provide for one Windows version and architecture.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DriverMedia {
    /// The volume label (`virtio-win-0.1.262`).
    pub volume_id: String,
    /// One folder per required driver, in [`REQUIRED_DRIVERS`] order.
    pub drivers: Vec<DriverDir>,
}

/// The folder virtio-win uses for an architecture: `amd64`, `ARM64`, `x86`.
pub fn arch_folder(arch: Arch) -> Result<&'static str> {
    match arch {
        Arch::X64 => Ok("amd64"),
        Arch::Arm64 => Ok("ARM64"),
        Arch::X86 => Ok("x86"),
        other => Err(Error::InvalidArgument(format!("virtio-win has no drivers for {other}"))),
    }
}

/// Opens the ISO at `path` and checks it; see [`check`].
pub fn check_path(path: &Path, version: &str, arch: Arch) -> Result<DriverMedia> {
    check(&Iso::open_path(path)?, version, arch)
}

/// Checks that `iso` holds every driver of [`REQUIRED_DRIVERS`] for the Windows `version` folder and `arch`.
pub fn check<R: ReadAt>(iso: &Iso<R>, version: &str, arch: Arch) -> Result<DriverMedia> {
    if version.is_empty() || !version.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
        return Err(Error::InvalidArgument(format!(
            "Windows version folder {version:?}: expected a virtio-win folder name like w10, w11, 2k22"
        )));
    }
    let arch_dir = arch_folder(arch)?;
    let mut drivers = Vec::new();
    let mut missing = Vec::new();
    for driver in REQUIRED_DRIVERS {
        match find_driver(iso, driver, version, arch_dir)? {
            Ok(found) => drivers.push(found),
            Err(why) => missing.push(why),
        }
    }
    if !missing.is_empty() {
        return Err(Error::DriversMissing {
            version: version.into(),
            arch: arch_dir.into(),
            missing: missing.join("; "),
        });
    }
    Ok(DriverMedia { volume_id: iso.volume_id().to_string(), drivers })
}

/// Folder names of a listing, for messages.
fn dir_names(entries: &[Entry]) -> String {
    let names: Vec<&str> = entries.iter().filter(|e| e.is_dir()).map(Entry::name).collect();
    if names.is_empty() { "none".into() } else { names.join(", ") }
}

/// The driver's folder, or why it is not usable.
fn find_driver<R: ReadAt>(
    iso: &Iso<R>,
    driver: &str,
    version: &str,
    arch_dir: &str,
) -> Result<std::result::Result<DriverDir, String>> {
    let top = iso.read_dir(&iso.root()?)?;
    let Some(d) = top.iter().find(|e| e.is_dir() && names_match(e.name(), driver)) else {
        return Ok(Err(format!("no {driver}/ folder")));
    };
    let versions = iso.read_dir(d)?;
    let Some(v) = versions.iter().find(|e| e.is_dir() && names_match(e.name(), version)) else {
        return Ok(Err(format!("{}/ has no {version}/ folder (it has: {})", d.name(), dir_names(&versions))));
    };
    let arches = iso.read_dir(v)?;
    let Some(a) = arches.iter().find(|e| e.is_dir() && names_match(e.name(), arch_dir)) else {
        return Ok(Err(format!(
            "{}/{}/ has no {arch_dir}/ folder (it has: {})",
            d.name(),
            v.name(),
            dir_names(&arches)
        )));
    };
    let path = format!("{}/{}/{}", d.name(), v.name(), a.name());
    let files = iso.read_dir(a)?;
    let infs: Vec<String> = files
        .iter()
        .filter(|e| !e.is_dir() && e.name().to_ascii_lowercase().ends_with(".inf"))
        .map(|e| e.name().to_string())
        .collect();
    let expected = format!("{driver}.inf");
    if !infs.iter().any(|n| names_match(n, &expected)) {
        return Ok(Err(format!("{path}/ has no {}", expected.to_ascii_lowercase())));
    }
    Ok(Ok(DriverDir { driver: driver.to_string(), path, infs }))
}
