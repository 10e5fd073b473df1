//! Windows installation media: the install image on an ISO and its editions.
//!
//! Setup installs from `sources/install.wim` (or the solid `sources/install.esd` of Microsoft's media creation
//! tool). [`inspect`] finds it case-insensitively and reads its header and XML through the ISO reader — a few
//! sectors, whatever the size of the ISO — and says precisely why media are not usable: not an ISO at all (an
//! HTML page, a cut-off download), an ISO of something else (no `sources/`), no install image, a damaged WIM.

use std::path::Path;

use crate::edition::{self, EditionSelector};
use crate::error::{Error, Result};
use crate::iso::{Filesystem, Iso};
use crate::source::ReadAt;
use crate::wim::{self, Arch, Edition, Format, Header};

/// The names Setup looks for in `sources/`, in its order.
pub const INSTALL_IMAGES: [&str; 2] = ["install.wim", "install.esd"];

/// What a Windows ISO holds: its volume, and the install image with its editions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstallMedia {
    /// The volume label (`CCCOMA_X64FRE_EN-US_DV9` on Microsoft's media).
    pub volume_id: String,
    /// The file system it was read through.
    pub filesystem: Filesystem,
    /// The install image's path on the media, as recorded (`sources/install.wim`).
    pub image_path: String,
    /// The install image's size in bytes.
    pub image_size: u64,
    /// WIM or ESD.
    pub format: Format,
    /// The image's header.
    pub header: Header,
    /// The editions, by index.
    pub editions: Vec<Edition>,
}

impl InstallMedia {
    /// Selects an edition by index or name (see [`crate::edition`]), checking the architecture if given.
    pub fn select(&self, selector: &EditionSelector, arch: Option<Arch>) -> Result<&Edition> {
        edition::select(&self.editions, selector, arch)
    }
}

/// Opens the ISO at `path` and inspects it; see [`inspect`].
pub fn inspect_path(path: &Path) -> Result<InstallMedia> {
    inspect(&Iso::open_path(path)?)
}

/// Finds the install image on an opened ISO and reads its editions.
pub fn inspect<R: ReadAt>(iso: &Iso<R>) -> Result<InstallMedia> {
    let root = iso.root()?;
    let Some(sources) = iso.lookup("sources")?.filter(|e| e.is_dir()) else {
        let mut names: Vec<String> = iso
            .read_dir(&root)?
            .iter()
            .map(|e| if e.is_dir() { format!("{}/", e.name()) } else { e.name().to_string() })
            .collect();
        names.sort_by_key(|n| n.to_lowercase());
        if names.len() > 12 {
            let more = names.len() - 12;
            names.truncate(12);
            names.push(format!("… {more} more"));
        }
        let top_level = if names.is_empty() { "empty".to_string() } else { names.join(", ") };
        return Err(Error::NotWindowsMedia { volume: iso.volume_id().to_string(), top_level });
    };
    let children = iso.read_dir(&sources)?;
    let found = INSTALL_IMAGES
        .iter()
        .find_map(|want| children.iter().find(|e| !e.is_dir() && crate::iso::names_match(e.name(), want)));
    let Some(image) = found else {
        let swm = children.iter().find(|e| e.name().to_ascii_lowercase().ends_with(".swm"));
        let wims: Vec<&str> = children
            .iter()
            .map(|e| e.name())
            .filter(|n| n.to_ascii_lowercase().ends_with(".wim") || n.to_ascii_lowercase().ends_with(".esd"))
            .collect();
        let found = match (swm, wims.is_empty()) {
            (Some(s), _) => format!(
                "; it holds a split image ({}), which vmkit does not read: join it with wimlib-imagex export",
                s.name()
            ),
            (None, false) => format!("; images there: {}", wims.join(", ")),
            (None, true) => String::new(),
        };
        return Err(Error::NoInstallImage { found });
    };
    let image_path = format!("{}/{}", sources.name(), image.name());
    let info = wim::read_info(&iso.file(image), &image_path)?;
    Ok(InstallMedia {
        volume_id: iso.volume_id().to_string(),
        filesystem: iso.filesystem(),
        image_path,
        image_size: image.size(),
        format: info.header.format,
        header: info.header,
        editions: info.editions,
    })
}
