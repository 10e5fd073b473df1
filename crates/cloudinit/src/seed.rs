//! The NoCloud seed: the files cloud-init reads, on a small disk image it finds by its label.
//!
//! cloud-init's NoCloud datasource looks for a filesystem labelled `cidata` (ISO9660) or `CIDATA` (vfat) holding
//! `user-data`, `meta-data` and optionally `network-config`. The ISO carries Rock Ridge and Joliet names so the
//! lowercase, hyphenated names survive every reader (plain ISO9660 level 1 would say `USER_DAT.;1`); the vfat image
//! uses long file names and is sized to its contents. Both are written to a temporary file and renamed into place.
//!
//! `meta-data` carries an `instance-id` derived from the contents of the seed: cloud-init runs its first-boot
//! modules again whenever the instance id changes, so a changed seed is applied and an unchanged one is not.

use std::io::{Cursor, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Arc;

use hadris_iso::read::PathSeparator;
use hadris_iso::write::options::{CreationFeatures, IsoFormatOptions};
use hadris_iso::write::{File as IsoFile, InputFiles, IsoImageWriter};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::keys::write_atomic;
use crate::{CloudConfig, CloudInitError, NetworkConfig};

/// The seed's filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SeedFormat {
    /// ISO9660 with Joliet and Rock Ridge, volume id `cidata`.
    #[default]
    Iso,
    /// FAT (vfat), label `CIDATA`.
    Vfat,
}

impl std::str::FromStr for SeedFormat {
    type Err = CloudInitError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "iso" | "iso9660" => Ok(Self::Iso),
            "vfat" | "fat" => Ok(Self::Vfat),
            other => Err(CloudInitError::Invalid {
                field: "seed format",
                value: other.to_owned(),
                expected: "`iso` or `vfat`".to_owned(),
            }),
        }
    }
}

/// The rendered seed files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seed {
    /// `user-data` (`#cloud-config` …).
    pub user_data: String,
    /// `meta-data` (`instance-id`, `local-hostname`).
    pub meta_data: String,
    /// `network-config`, when one was given.
    pub network_config: Option<String>,
    /// The instance id written into meta-data.
    pub instance_id: String,
}

#[derive(Serialize)]
struct MetaData<'a> {
    #[serde(rename = "instance-id")]
    instance_id: &'a str,
    #[serde(rename = "local-hostname")]
    local_hostname: &'a str,
}

impl Seed {
    /// Renders the files from the models.
    pub fn new(config: &CloudConfig, network: Option<&NetworkConfig>) -> Result<Self, CloudInitError> {
        let user_data = config.render()?;
        let network_config = network.map(NetworkConfig::render).transpose()?;
        let mut hasher = Sha256::new();
        hasher.update(user_data.as_bytes());
        hasher.update([0]);
        hasher.update(network_config.as_deref().unwrap_or_default().as_bytes());
        let digest = hasher.finalize();
        let instance_id = format!("vmkit-{}", hex::encode(digest.get(..8).unwrap_or_default()));
        let meta = MetaData { instance_id: &instance_id, local_hostname: &config.hostname };
        let meta_data = crate::to_yaml("meta-data", &meta)?;
        Ok(Self { user_data, meta_data, network_config, instance_id })
    }

    /// The files as (name, contents), in the order they are written.
    pub fn files(&self) -> Vec<(&'static str, &[u8])> {
        let mut files = vec![("meta-data", self.meta_data.as_bytes())];
        if let Some(net) = &self.network_config {
            files.push(("network-config", net.as_bytes()));
        }
        files.push(("user-data", self.user_data.as_bytes()));
        files
    }

    /// Writes the plain files into `dir` (for inspection, or for a datasource that reads a directory).
    pub fn write_files(&self, dir: &Path) -> Result<(), CloudInitError> {
        for (name, data) in self.files() {
            write_atomic(&dir.join(name), data, 0o644)?;
        }
        Ok(())
    }

    /// The seed as a disk image in memory.
    pub fn image(&self, format: SeedFormat) -> Result<Vec<u8>, CloudInitError> {
        match format {
            SeedFormat::Iso => self.iso(),
            SeedFormat::Vfat => self.vfat(),
        }
    }

    /// Writes the seed image to `path` (atomically, mode 0644).
    pub fn write_image(&self, path: &Path, format: SeedFormat) -> Result<(), CloudInitError> {
        write_atomic(path, &self.image(format)?, 0o644)
    }

    fn iso(&self) -> Result<Vec<u8>, CloudInitError> {
        let files = InputFiles {
            path_separator: PathSeparator::ForwardSlash,
            files: self
                .files()
                .into_iter()
                .map(|(name, data)| IsoFile::File { name: Arc::new(name.to_owned()), contents: data.to_vec() })
                .collect(),
        };
        let options = IsoFormatOptions {
            volume_name: "cidata".to_owned(),
            system_id: None,
            volume_set_id: None,
            publisher_id: None,
            preparer_id: None,
            application_id: Some("vmkit".to_owned()),
            sector_size: 2048,
            features: CreationFeatures::extensions(),
            path_separator: PathSeparator::ForwardSlash,
            strict_charset: false,
        };
        let out = IsoImageWriter::create(Cursor::new(Vec::new()), files, options)
            .map_err(|e| CloudInitError::Render { what: "seed ISO", reason: e.to_string() })?;
        Ok(out.into_inner())
    }

    fn vfat(&self) -> Result<Vec<u8>, CloudInitError> {
        let err = |e: std::io::Error| CloudInitError::Render { what: "seed vfat image", reason: e.to_string() };
        let payload: usize = self.files().iter().map(|(_, d)| d.len()).sum();
        // FAT12 with 512-byte clusters: room for the files plus directory and FAT overhead, at least 1 MiB.
        let size = (payload + payload / 8 + (256 << 10)).max(1 << 20).next_multiple_of(1 << 16);
        let mut disk = Cursor::new(vec![0u8; size]);
        // The serial number comes from the contents, so the same seed gives the same bytes (reproducible builds).
        let digest = Sha256::digest(self.user_data.as_bytes());
        let volume_id = u32::from_le_bytes(digest.get(..4).and_then(|b| b.try_into().ok()).unwrap_or([0; 4]));
        let options = fatfs::FormatVolumeOptions::new().volume_label(*b"CIDATA     ").volume_id(volume_id);
        fatfs::format_volume(&mut disk, options).map_err(err)?;
        disk.seek(SeekFrom::Start(0)).map_err(err)?;
        {
            let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new()).map_err(err)?;
            for (name, data) in self.files() {
                let root = fs.root_dir();
                let mut file = root.create_file(name).map_err(err)?;
                file.truncate().map_err(err)?;
                file.write_all(data).map_err(err)?;
                file.flush().map_err(err)?;
            }
            fs.unmount().map_err(err)?;
        }
        Ok(disk.into_inner())
    }
}
