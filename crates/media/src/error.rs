//! The crate's one error type: every way installation media can be wrong, with what was found.
//!
//! Media come from users and downloads, so each variant names the file or structure at fault and what was there
//! instead (an HTML page where an ISO was expected, the editions that *are* present, the drivers that are
//! missing). Everything except [`Error::Io`] is the media's fault: [`Error::is_bad_input`] tells a binary to exit
//! with its bad-input code.

use std::path::PathBuf;

/// Reading or checking installation media failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A structure lies (partly) beyond the end of the file: a cut-off download or a damaged image.
    #[error("truncated: {what} needs bytes up to {needed} but the file has only {size} bytes")]
    Truncated {
        /// What was being read.
        what: String,
        /// The end offset the structure needs.
        needed: u64,
        /// The file's size.
        size: u64,
    },
    /// The file is not an ISO image (no ISO9660 or UDF volume), with a description of what it is.
    #[error("not an ISO image: found {found}")]
    NotAnIso {
        /// What the file looks like (`an HTML page (starts with <!DOCTYPE html>)`, …).
        found: String,
    },
    /// A structure of the image is inconsistent (bad descriptor, loop, absurd size).
    #[error("damaged or unsupported image: {0}")]
    Malformed(String),
    /// A path does not exist in the image.
    #[error("{path}: no such file or folder in the image")]
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// A path names a file where a folder was expected, or the other way round.
    #[error("{path}: {problem}")]
    WrongKind {
        /// The path asked for.
        path: String,
        /// `is a folder, not a file` or the reverse.
        problem: &'static str,
    },
    /// The ISO is readable but holds no Windows setup (`sources/` missing).
    #[error("not Windows installation media: no sources/ folder (volume {volume:?}; top level: {top_level})")]
    NotWindowsMedia {
        /// The volume label.
        volume: String,
        /// The names at the top level, comma-separated.
        top_level: String,
    },
    /// `sources/` holds no `install.wim` or `install.esd`.
    #[error("no install image: sources/ holds no install.wim or install.esd{found}")]
    NoInstallImage {
        /// A note on what it holds instead (e.g. a split install.swm), starting with `; `.
        found: String,
    },
    /// The install image does not start with the WIM magic.
    #[error("{path}: not a WIM file (starts with {found})")]
    NotWim {
        /// The image's path.
        path: String,
        /// The first bytes, described.
        found: String,
    },
    /// The WIM header or its XML is damaged or in a form vmkit does not read.
    #[error("{path}: {problem}")]
    BadWim {
        /// The image's path.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// The edition asked for is not in the image.
    #[error("edition {wanted:?} is not on this media; present: {present}")]
    EditionNotPresent {
        /// The selector as given.
        wanted: String,
        /// The editions present, one per `; `.
        present: String,
    },
    /// A name selects more than one edition.
    #[error("edition {wanted:?} matches more than one image, choose one by index: {matches}")]
    AmbiguousEdition {
        /// The selector as given.
        wanted: String,
        /// The matching editions.
        matches: String,
    },
    /// The edition is there, but for another architecture.
    #[error("edition {edition} is for {found}, not {wanted}")]
    WrongArchitecture {
        /// The edition, described.
        edition: String,
        /// The architecture wanted.
        wanted: String,
        /// The architecture on the media.
        found: String,
    },
    /// The VirtIO media lacks drivers needed for this Windows version and architecture.
    #[error("VirtIO driver media lacks drivers for {version}/{arch}: {missing}")]
    DriversMissing {
        /// The Windows version folder (`w11`, `2k22`, …).
        version: String,
        /// The architecture folder (`amd64`, `ARM64`).
        arch: String,
        /// What is missing, one per `; `.
        missing: String,
    },
    /// A value given by the caller is invalid (an edition selector, a driver folder name).
    #[error("{0}")]
    InvalidArgument(String),
}

impl Error {
    /// Whether the error is the input's fault (the media, a selector) rather than the machine's (an I/O error).
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Io { source, .. } => {
                matches!(source.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory)
            }
            _ => true,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
