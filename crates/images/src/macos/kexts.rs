//! Kexts on the boot disk: bundles taken from pinned release zips, unpacked into `EFI/OC/Kexts` and listed in
//! `config.plist`'s `Kernel.Add`.
//!
//! A kext release (acidanthera's `Lilu-X.Y.Z-RELEASE.zip`, `VirtualSMC-…`, `WhateverGreen-…`) is a zip holding one
//! or more bundles — `Lilu.kext/Contents/Info.plist`, `Lilu.kext/Contents/MacOS/Lilu`, sometimes under a folder
//! (`Kexts/VirtualSMC.kext/…`) — next to debug symbols (`Lilu.kext.dSYM`) and tools. vmkit takes the outermost
//! `*.kext` directories (plug-ins inside a bundle stay inside it), all of them or the ones a recipe names, reads
//! each bundle's `Info.plist` with the `plist` crate for its executable (`CFBundleExecutable`, which must be in
//! `Contents/MacOS/`; a codeless kext has none), identifier and the libraries it links against
//! (`OSBundleLibraries`), and orders the bundles so that every one comes after the bundles it depends on — OpenCore
//! injects them in `Kernel.Add`'s order, and a plug-in before Lilu does not load.
//!
//! The zip comes from outside: only entries whose names are plain relative paths are taken (no `..`, no absolute
//! paths, no backslashes), each bounded in size, the whole bounded too; nothing is unpacked by its own path.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::opencore::Kext;

/// Where kexts go on the ESP.
pub const KEXTS_DIR: &str = "EFI/OC/Kexts";
/// The largest file taken from a kext release.
pub const MAX_FILE: u64 = 16 << 20;
/// The most bytes taken from one release.
pub const MAX_TOTAL: u64 = 64 << 20;
/// The most entries a release may have.
pub const MAX_ENTRIES: usize = 20_000;

/// What is wrong with a kext release.
#[derive(Debug, thiserror::Error)]
pub enum KextError {
    /// The file could not be read.
    #[error("reading the kext release {}: {source}", path.display())]
    Io {
        /// The release.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a zip, or a damaged or hostile one.
    #[error("{}: not a usable kext release zip: {reason}", path.display())]
    Invalid {
        /// The release.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A bundle the recipe names is not in the release.
    #[error("{}: the release has no {bundle} (it has: {found})", path.display())]
    Missing {
        /// The release.
        path: PathBuf,
        /// The bundle asked for.
        bundle: String,
        /// What it has.
        found: String,
    },
    /// A bundle's `Info.plist` is missing or not what a kext's is.
    #[error("{}: {bundle}: {reason}", path.display())]
    Bundle {
        /// The release.
        path: PathBuf,
        /// The bundle.
        bundle: String,
        /// Why.
        reason: String,
    },
    /// Two bundles of the same name (from one release or two).
    #[error("two kexts named {0}: each bundle name may appear once on the boot disk")]
    Duplicate(String),
}

/// One kext bundle, ready for the ESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KextBundle {
    /// `Lilu.kext`.
    pub name: String,
    /// `CFBundleIdentifier` (`as.vit9696.Lilu`).
    pub identifier: String,
    /// `Contents/MacOS/Lilu`, or empty for a codeless kext.
    pub executable_path: String,
    /// The identifiers of `OSBundleLibraries`.
    pub libraries: Vec<String>,
    /// `(path inside the bundle, bytes)`, e.g. `("Contents/Info.plist", …)`.
    pub files: Vec<(String, Vec<u8>)>,
}

impl KextBundle {
    /// The bundle's files at their ESP paths (`EFI/OC/Kexts/Lilu.kext/Contents/Info.plist`).
    pub fn esp_files(&self) -> impl Iterator<Item = (String, &Vec<u8>)> {
        self.files.iter().map(move |(p, b)| (format!("{KEXTS_DIR}/{}/{p}", self.name), b))
    }

    /// The bundle's `Kernel.Add` entry.
    pub fn entry(&self) -> Kext {
        Kext {
            bundle_path: self.name.clone(),
            comment: self.identifier.clone(),
            enabled: true,
            executable_path: self.executable_path.clone(),
            plist_path: "Contents/Info.plist".to_owned(),
            arch: "x86_64".to_owned(),
            min_kernel: String::new(),
            max_kernel: String::new(),
        }
    }
}

/// What a kext release contributed, as recorded in `prepared.json` and the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KextRecord {
    /// The release (path on this host; URL and SHA-256 for downloads).
    pub release: crate::windows::prepare::MediaRecord,
    /// The bundles taken from it, in `Kernel.Add` order.
    pub bundles: Vec<String>,
}

/// A bundle's files: `(path inside the bundle, bytes)`.
type Files = Vec<(String, Vec<u8>)>;

/// A relative path made of plain components, `/`-separated; `None` for anything else.
fn plain(name: &str) -> Option<Vec<&str>> {
    if name.contains('\\') || name.starts_with('/') || name.contains('\0') {
        return None;
    }
    let parts: Vec<&str> = name.split('/').filter(|p| !p.is_empty()).collect();
    (!parts.is_empty() && parts.iter().all(|p| *p != "." && *p != "..")).then_some(parts)
}

/// Reads the bundles of the release zip at `path` (all of them when `wanted` is empty).
pub fn read_release(path: &Path, wanted: &[String]) -> Result<Vec<KextBundle>, KextError> {
    let file = std::fs::File::open(path).map_err(|source| KextError::Io { path: path.to_owned(), source })?;
    from_zip(std::io::BufReader::new(file), path, wanted)
}

/// Reads the bundles of a release zip from `reader`; `path` names it in errors.
pub fn from_zip<R: Read + std::io::Seek>(
    reader: R,
    path: &Path,
    wanted: &[String],
) -> Result<Vec<KextBundle>, KextError> {
    let invalid = |reason: String| KextError::Invalid { path: path.to_owned(), reason };
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| invalid(e.to_string()))?;
    if archive.len() > MAX_ENTRIES {
        return Err(invalid(format!("{} entries (at most {MAX_ENTRIES})", archive.len())));
    }
    // Bundle name → (its prefix in the zip, its files).
    let mut found: BTreeMap<String, (String, Files)> = BTreeMap::new();
    let mut total = 0u64;
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).map_err(|e| invalid(e.to_string()))?;
        if member.is_dir() || member.is_symlink() {
            continue;
        }
        let name = member.name().map_err(|e| invalid(e.to_string()))?.into_owned();
        let Some(parts) = plain(&name) else {
            return Err(invalid(format!("the entry {name:?} is not a plain relative path")));
        };
        let Some(at) = parts.iter().position(|p| p.ends_with(".kext") && p.len() > ".kext".len()) else { continue };
        let bundle = parts[at].to_owned();
        let prefix = parts[..=at].join("/");
        let inner = parts[at + 1..].join("/");
        if inner.is_empty() {
            continue;
        }
        let wanted_here = wanted.is_empty() || wanted.contains(&bundle);
        match found.get(&bundle) {
            Some((p, _)) if *p != prefix => {
                return Err(invalid(format!("{bundle} is in the zip twice ({p} and {prefix})")));
            }
            _ => {}
        }
        let entry = found.entry(bundle.clone()).or_insert_with(|| (prefix, Vec::new()));
        if !wanted_here {
            continue;
        }
        if member.size() > MAX_FILE {
            return Err(invalid(format!("{name} is {} bytes (at most {MAX_FILE})", member.size())));
        }
        let mut bytes = Vec::new();
        (&mut member).take(MAX_FILE + 1).read_to_end(&mut bytes).map_err(|e| invalid(format!("{name}: {e}")))?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(invalid(format!("{name} inflates past {MAX_FILE} bytes")));
        }
        total += bytes.len() as u64;
        if total > MAX_TOTAL {
            return Err(invalid(format!("the bundles hold more than {MAX_TOTAL} bytes")));
        }
        entry.1.push((inner, bytes));
    }
    let names: Vec<String> = found.keys().cloned().collect();
    let list = if names.is_empty() { "no .kext bundle".to_owned() } else { names.join(", ") };
    let chosen: Vec<String> = if wanted.is_empty() { names.clone() } else { wanted.to_vec() };
    if chosen.is_empty() {
        return Err(invalid("it holds no .kext bundle".to_owned()));
    }
    let mut bundles = Vec::new();
    for name in chosen {
        let Some((_, files)) = found.remove(&name) else {
            return Err(KextError::Missing { path: path.to_owned(), bundle: name, found: list });
        };
        bundles.push(bundle(path, name, files)?);
    }
    Ok(bundles)
}

/// A bundle from its files: its `Info.plist` read, its executable checked.
fn bundle(path: &Path, name: String, files: Files) -> Result<KextBundle, KextError> {
    let bad = |reason: String| KextError::Bundle { path: path.to_owned(), bundle: name.clone(), reason };
    let info = files
        .iter()
        .find(|(p, _)| p == "Contents/Info.plist")
        .ok_or_else(|| bad("no Contents/Info.plist".to_owned()))?;
    let value = plist::Value::from_reader(std::io::Cursor::new(&info.1))
        .map_err(|e| bad(format!("Contents/Info.plist: {e}")))?;
    let dict = value.as_dictionary().ok_or_else(|| bad("Contents/Info.plist is not a dictionary".to_owned()))?;
    let text = |key: &str| dict.get(key).and_then(plist::Value::as_string).map(str::to_owned);
    let identifier =
        text("CFBundleIdentifier").ok_or_else(|| bad("Info.plist has no CFBundleIdentifier".to_owned()))?;
    let executable_path = match text("CFBundleExecutable") {
        Some(exe) => {
            if plain(&exe).is_none_or(|p| p.len() != 1) {
                return Err(bad(format!("CFBundleExecutable {exe:?} is not a file name")));
            }
            let at = format!("Contents/MacOS/{exe}");
            if !files.iter().any(|(p, _)| *p == at) {
                return Err(bad(format!("its executable {at} is not in the release")));
            }
            at
        }
        None => String::new(),
    };
    let libraries = dict
        .get("OSBundleLibraries")
        .and_then(plist::Value::as_dictionary)
        .map(|d| d.keys().cloned().collect())
        .unwrap_or_default();
    Ok(KextBundle { name, identifier, executable_path, libraries, files })
}

/// `bundles` in an order OpenCore can inject them: each after the bundles it links against, otherwise as given.
/// Bundle names must be unique.
pub fn ordered(bundles: Vec<KextBundle>) -> Result<Vec<KextBundle>, KextError> {
    let mut seen = std::collections::BTreeSet::new();
    for b in &bundles {
        if !seen.insert(b.name.clone()) {
            return Err(KextError::Duplicate(b.name.clone()));
        }
    }
    let ids: Vec<String> = bundles.iter().map(|b| b.identifier.clone()).collect();
    let mut left = bundles;
    let mut out: Vec<KextBundle> = Vec::new();
    while !left.is_empty() {
        // The first bundle whose dependencies among the given ones are all placed; a cycle keeps the given order.
        let ready = left
            .iter()
            .position(|b| {
                b.libraries
                    .iter()
                    .all(|l| !ids.contains(l) || out.iter().any(|o| o.identifier == *l) || *l == b.identifier)
            })
            .unwrap_or(0);
        out.push(left.remove(ready));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plist(id: &str, exe: Option<&str>, libs: &[&str]) -> Vec<u8> {
        let mut d = plist::Dictionary::new();
        d.insert("CFBundleIdentifier".into(), id.into());
        if let Some(e) = exe {
            d.insert("CFBundleExecutable".into(), e.into());
        }
        let mut l = plist::Dictionary::new();
        for lib in libs {
            l.insert((*lib).into(), "1.0".into());
        }
        d.insert("OSBundleLibraries".into(), plist::Value::Dictionary(l));
        let mut out = Vec::new();
        plist::Value::Dictionary(d).to_writer_xml(&mut out).unwrap();
        out
    }

    fn zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, bytes) in entries {
            w.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            std::io::Write::write_all(&mut w, bytes).unwrap();
        }
        w.finish().unwrap().into_inner()
    }

    #[test]
    fn bundles_are_found_chosen_checked_and_ordered() {
        let lilu = plist("as.vit9696.Lilu", Some("Lilu"), &["com.apple.kpi.bsd"]);
        let vsmc = plist("as.vit9696.VirtualSMC", Some("VirtualSMC"), &["as.vit9696.Lilu"]);
        let smcp = plist("ru.joedm.SMCProcessor", Some("SMCProcessor"), &["as.vit9696.VirtualSMC"]);
        let z = zip(&[
            ("Kexts/SMCProcessor.kext/Contents/Info.plist", &smcp),
            ("Kexts/SMCProcessor.kext/Contents/MacOS/SMCProcessor", b"bin"),
            ("Kexts/VirtualSMC.kext/Contents/Info.plist", &vsmc),
            ("Kexts/VirtualSMC.kext/Contents/MacOS/VirtualSMC", b"bin"),
            ("Kexts/VirtualSMC.kext.dSYM/Contents/Info.plist", b"ignored"),
            ("Tools/smcread", b"ignored"),
        ]);
        let p = Path::new("VirtualSMC.zip");
        let all = from_zip(std::io::Cursor::new(&z), p, &[]).unwrap();
        assert_eq!(all.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["SMCProcessor.kext", "VirtualSMC.kext"]);
        let one = from_zip(std::io::Cursor::new(&z), p, &["VirtualSMC.kext".to_owned()]).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].executable_path, "Contents/MacOS/VirtualSMC");
        let err = from_zip(std::io::Cursor::new(&z), p, &["Lilu.kext".to_owned()]).unwrap_err().to_string();
        assert!(err.contains("no Lilu.kext") && err.contains("VirtualSMC.kext"), "{err}");

        let lz = zip(&[("Lilu.kext/Contents/Info.plist", &lilu), ("Lilu.kext/Contents/MacOS/Lilu", b"bin")]);
        let lilu = from_zip(std::io::Cursor::new(&lz), Path::new("Lilu.zip"), &[]).unwrap();
        let order = ordered(all.into_iter().chain(lilu).collect()).unwrap();
        assert_eq!(
            order.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
            ["Lilu.kext", "VirtualSMC.kext", "SMCProcessor.kext"]
        );
        assert_eq!(order[0].esp_files().next().unwrap().0, "EFI/OC/Kexts/Lilu.kext/Contents/Info.plist");
        assert!(matches!(ordered(vec![order[0].clone(), order[0].clone()]), Err(KextError::Duplicate(_))));
    }

    #[test]
    fn hostile_and_broken_releases_are_refused() {
        let p = Path::new("x.zip");
        let good = plist("a.b", Some("A"), &[]);
        for (entries, needle) in [
            (vec![("../A.kext/Contents/Info.plist", good.as_slice())], "plain relative path"),
            (vec![("A.kext/Contents/Info.plist", good.as_slice())], "Contents/MacOS/A"),
            (vec![("A.kext/Contents/MacOS/A", b"bin".as_slice())], "no Contents/Info.plist"),
            (vec![("A.kext/Contents/Info.plist", b"not a plist".as_slice())], "Info.plist"),
            (vec![("readme.txt", b"x".as_slice())], "no .kext bundle"),
        ] {
            let err = from_zip(std::io::Cursor::new(zip(&entries)), p, &[]).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
        assert!(from_zip(std::io::Cursor::new(b"not a zip".to_vec()), p, &[]).is_err());
        let bad_exe = plist("a.b", Some("../../x"), &[]);
        let err = from_zip(std::io::Cursor::new(zip(&[("A.kext/Contents/Info.plist", &bad_exe)])), p, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a file name"), "{err}");
    }
}
