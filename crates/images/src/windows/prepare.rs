//! `vmkit image prepare` for Windows recipes: everything up to the first boot, and nothing after.
//!
//! The output directory holds what the install boots from and what the built image keeps: the empty system disk,
//! the firmware's variable store (a copy of the Microsoft-keys template), the TPM's state directory, the generated
//! key pair, the answer file and the answer media (both 0600: they hold the administrator's password), and an
//! `install` script that starts swtpm and QEMU with the install media attached — the same machine model the build
//! runs. `prepared.json` records the media (paths, and the SHA-256 of downloads), the edition index, the Setup
//! checks bypassed and the accelerator chosen.
//!
//! All or nothing: the directory is built hidden beside the output and renamed into place last; an existing output
//! is never replaced unless the caller asks.

use std::path::{Path, PathBuf};

use cloudinit::KeyPair;
use qemu::{KvmProbe, RunScript, SwtpmCommand};
use serde::Serialize;

use crate::build::OutputPlace;
use crate::build::{BuildError, files};
use crate::fsutil::WorkDir;
use crate::recipe::Recipe;
use crate::windows::answer::{self, AnswerFile, MachineFacts, Password};
use crate::windows::machine::{FirmwareFiles, InstallMedia, TCG_WARNING, WindowsMachine};
use crate::windows::{EditionChoice, MediaSource, WindowsSource};

/// File names in a prepared (and built) Windows directory.
pub mod names {
    /// The answer media (FAT).
    pub const ANSWER_MEDIA: &str = "answer.img";
    /// The answer file, for inspection.
    pub const ANSWER_XML: &str = "Autounattend.xml";
    /// The TPM's state directory.
    pub const TPM_DIR: &str = "tpm";
    /// swtpm's control socket, inside the TPM directory.
    pub const TPM_SOCKET: &str = "tpm/swtpm.sock";
    /// This image's UEFI variable store, the install script, what was prepared (named as for macOS).
    pub use crate::build::files::{INSTALL, PREPARED, VARS};
}

/// Media given on the command line instead of the recipe's.
#[derive(Debug, Clone, Default)]
pub struct MediaOverrides {
    /// `--iso PATH`.
    pub iso: Option<PathBuf>,
    /// `--virtio PATH`.
    pub virtio: Option<PathBuf>,
}

/// How to prepare.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// The output directory.
    pub out: PathBuf,
    /// vmkit's cache root.
    pub cache_root: PathBuf,
    /// Replace an existing output directory.
    pub replace: bool,
    /// Media overrides.
    pub media: MediaOverrides,
    /// Download progress.
    pub progress: fetch::ProgressMode,
    /// No step messages.
    pub quiet: bool,
    /// Where step messages go; `None`: only `tracing` events.
    pub sink: Option<crate::build::ProgressSink>,
}

/// A verified piece of media.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaRecord {
    /// Where it is on this host.
    pub path: PathBuf,
    /// Where it came from, for downloads.
    pub url: Option<String>,
    /// Its SHA-256, for downloads (verified while downloading).
    pub sha256: Option<String>,
    /// Its size in bytes.
    pub size: u64,
}

/// What `prepared.json` says.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Prepared {
    /// The recipe's name.
    pub name: String,
    /// vmkit's version.
    pub vmkit: String,
    /// The install ISO.
    pub iso: MediaRecord,
    /// The VirtIO media.
    pub virtio: MediaRecord,
    /// The WIM image index installed.
    pub image_index: u32,
    /// The edition's name on the media.
    pub edition: String,
    /// The driver folders found on the VirtIO media (`viostor/w11/amd64`, …).
    pub drivers: Vec<String>,
    /// Setup checks bypassed (LabConfig value names).
    pub bypasses: Vec<String>,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Why.
    pub accel_reason: String,
    /// The public key authorised for the administrator.
    pub public_key: String,
}

/// Resolves one piece of media: a local file must exist; a download is fetched into the cache under `cache_root`
/// and verified.
pub(crate) async fn resolve_media(
    what: &str,
    over: Option<&Path>,
    recipe: Option<&MediaSource>,
    cache_root: &Path,
    progress: fetch::ProgressMode,
    say: &crate::build::Say,
) -> Result<MediaRecord, BuildError> {
    let source = match (over, recipe) {
        (Some(path), _) => MediaSource::Path(path.to_owned()),
        (None, Some(s)) => s.clone(),
        (None, None) => return Err(BuildError::MissingMedia { what: what.to_owned() }),
    };
    match source {
        MediaSource::Path(path) => {
            let meta = std::fs::metadata(&path).map_err(|e| BuildError::MediaUnreadable {
                what: what.to_owned(),
                path: path.clone(),
                reason: e.to_string(),
            })?;
            if !meta.is_file() {
                return Err(BuildError::MediaUnreadable {
                    what: what.to_owned(),
                    path,
                    reason: "not a regular file".to_owned(),
                });
            }
            Ok(MediaRecord { path, url: None, sha256: None, size: meta.len() })
        }
        MediaSource::Download { url, sha256 } => {
            let digest: fetch::Sha256 = sha256.parse()?;
            let src = fetch::Source::new(&url, digest)?;
            let fetcher =
                fetch::Fetcher::new(fetch::Cache::at(cache_root))?.progress(progress).lines(say.fetch_lines());
            let fetched = fetcher.fetch(&src).await?;
            let size = std::fs::metadata(&fetched.path).map(|m| m.len()).unwrap_or(0);
            Ok(MediaRecord { path: fetched.path, url: Some(url), sha256: Some(sha256), size })
        }
    }
}

/// The edition as the media reader selects it.
pub fn selector(choice: &EditionChoice) -> media::edition::EditionSelector {
    match choice {
        EditionChoice::Index(i) => media::edition::EditionSelector::Index(*i),
        EditionChoice::Name(name) => media::edition::EditionSelector::Name(name.clone()),
    }
}

/// Prepares a Windows recipe into `opts.out`.
pub async fn prepare(recipe: &Recipe, w: &WindowsSource, opts: &PrepareOptions) -> Result<Prepared, BuildError> {
    let say = crate::build::Say::with_sink(&recipe.name, opts.quiet, opts.sink.clone());
    if opts.out.exists() && !opts.replace {
        return Err(BuildError::OutputExists { path: opts.out.clone() });
    }
    let OutputPlace { name: out_name, parent, partial } = OutputPlace::of(&opts.out, &recipe.name);
    WorkDir::sweep_stale(&parent, &partial);
    let work = WorkDir::create(&parent, &partial)?;
    let made = prepare_into(recipe, w, work.path(), opts, &say).await?;
    crate::build::publish(work, &opts.out, &out_name, &parent)?;
    say.line(&format!("prepared {}: run {} to install", opts.out.display(), opts.out.join(names::INSTALL).display()));
    Ok(made.prepared)
}

/// What [`prepare_into`] made, for the build that goes on from there.
pub(crate) struct Made {
    pub(crate) prepared: Prepared,
    pub(crate) accel: qemu::AccelChoice,
    pub(crate) keypair: KeyPair,
    /// The private key: the generated one in the directory, or the recipe's.
    pub(crate) key_path: PathBuf,
    /// The generated key's file name, when the key was generated.
    pub(crate) generated_key: Option<String>,
    pub(crate) iso: PathBuf,
    pub(crate) virtio: PathBuf,
}

/// Everything up to the first boot, written into the existing directory `dir`.
pub(crate) async fn prepare_into(
    recipe: &Recipe,
    w: &WindowsSource,
    dir: &Path,
    opts: &PrepareOptions,
    say: &crate::build::Say,
) -> Result<Made, BuildError> {
    let firmware = FirmwareFiles::debian(w.secure_boot);
    if let Some(missing) = firmware.missing() {
        return Err(BuildError::Firmware { path: missing.to_owned() });
    }
    let iso =
        resolve_media("install ISO", opts.media.iso.as_deref(), w.iso.as_ref(), &opts.cache_root, opts.progress, say)
            .await?;
    let virtio = resolve_media(
        "VirtIO driver media",
        opts.media.virtio.as_deref(),
        w.virtio.as_ref(),
        &opts.cache_root,
        opts.progress,
        say,
    )
    .await?;
    // Both ISOs are looked into before anything boots: the edition must be on the install image (for x64), and
    // the VirtIO media must hold the storage and network drivers for this Windows version.
    let install = media::windows::inspect_path(&iso.path)?;
    let edition = install.select(&selector(&w.edition), Some(media::wim::Arch::X64))?;
    let image_index = edition.index;
    say.line(&format!("edition: {} (image {image_index} of {})", edition.title(), install.image_path));
    let drivers = media::virtio::check_path(&virtio.path, w.version.virtio_dir(), media::wim::Arch::X64)?;
    let driver_dirs: Vec<String> = drivers.drivers.iter().map(|d| d.path.clone()).collect();
    let password = Password::read(&w.password_file)?;

    let probe = KvmProbe::with_cache_dir(Some(opts.cache_root.join("kvm-probe")));
    let accel = probe.choose().await?;
    if accel.accel == qemu::Accel::Tcg {
        say.line(&format!("warning: {TCG_WARNING}"));
    }

    let (keypair, key_path, generated_key) = match &recipe.ssh_key {
        Some(path) => (KeyPair::load(path)?, path.clone(), None),
        None => {
            let pair = KeyPair::generate(&format!("vmkit@{}", recipe.name))?;
            let written = pair.write(dir, files::KEY)?;
            (pair, written.private, Some(files::KEY.to_owned()))
        }
    };
    let facts = MachineFacts {
        tpm: w.tpm,
        secure_boot: w.secure_boot,
        memory_mib: recipe.memory,
        disk_bytes: recipe.disk_bytes,
        emulated_cpu: accel.accel == qemu::Accel::Tcg,
    };
    let bypasses = answer::lab_bypasses(w.version, &facts);
    let mut answer_file = AnswerFile::new(w, &recipe.username, password, image_index, bypasses.clone());
    // The folders as the media spells them (virtio-win's case), on every letter the media can get.
    answer_file.driver_paths = answer::driver_paths_for(&driver_dirs);
    crate::build::write_mode(&dir.join(names::ANSWER_XML), answer_file.render().as_bytes(), 0o600)?;
    answer::answer_media(&answer_file, &keypair.public_openssh())?.write(&dir.join(names::ANSWER_MEDIA), 0o600)?;
    let vars = std::fs::read(&firmware.vars_template).map_err(|source| BuildError::Io {
        op: "reading",
        path: firmware.vars_template.clone(),
        source,
    })?;
    crate::build::write_mode(&dir.join(names::VARS), &vars, 0o644)?;
    if w.tpm {
        std::fs::create_dir(dir.join(names::TPM_DIR)).map_err(|source| BuildError::Io {
            op: "creating",
            path: dir.join(names::TPM_DIR),
            source,
        })?;
    }
    crate::tools::create_disk(&dir.join(files::DISK), recipe.disk_bytes).await?;

    let attached = InstallMedia { iso: absolute(&iso.path), virtio: absolute(&virtio.path), answer: PathBuf::new() };
    let machine = machine_in(Path::new(""), recipe, w, accel.accel, Some(attached));
    let mut before = Vec::new();
    if w.tpm {
        let mut swtpm = SwtpmCommand::new(names::TPM_DIR, names::TPM_SOCKET);
        swtpm.daemon = true;
        before.push(swtpm.script_argv());
    }
    let script = RunScript {
        comments: vec![
            format!(
                "{} — the Windows install prepared by vmkit {} ({}).",
                recipe.name,
                env!("CARGO_PKG_VERSION"),
                accel.accel
            ),
            "Boots Setup with the install ISO, the VirtIO media and the answer media attached. Press a key when the"
                .to_owned(),
            "DVD asks (\"Press any key to boot from CD or DVD\"); extra arguments go to QEMU, e.g. -display gtk or"
                .to_owned(),
            "-vnc 127.0.0.1:1 to watch it.".to_owned(),
        ],
        cd_to_script_dir: true,
        pass_args: true,
        before,
        state: None,
    }
    .render(&machine.interactive())?;
    crate::build::write_mode(&dir.join(names::INSTALL), script.as_bytes(), 0o755)?;

    let (iso_path, virtio_path) = (absolute(&iso.path), absolute(&virtio.path));
    let prepared = Prepared {
        name: recipe.name.clone(),
        vmkit: env!("CARGO_PKG_VERSION").to_owned(),
        iso,
        virtio,
        image_index,
        edition: edition.title().to_string(),
        drivers: driver_dirs.clone(),
        bypasses: bypasses.iter().map(|b| b.value_name().to_owned()).collect(),
        accel: accel.accel.to_string(),
        accel_reason: accel.reason.clone(),
        public_key: keypair.public_openssh(),
    };
    let json = serde_json::to_vec_pretty(&prepared).unwrap_or_default();
    crate::build::write_mode(&dir.join(names::PREPARED), &json, 0o644)?;
    Ok(Made { prepared, accel, keypair, key_path, generated_key, iso: iso_path, virtio: virtio_path })
}

/// The Windows machine of an image directory `dir` (`""` for paths relative to it, as the scripts use): the disk,
/// VARS and TPM socket in `dir`; with `install`, the install ISO and VirtIO media given there and the answer
/// media of `dir` attached.
pub fn machine_in(
    dir: &Path,
    recipe: &Recipe,
    w: &WindowsSource,
    accel: qemu::Accel,
    install: Option<InstallMedia>,
) -> WindowsMachine {
    WindowsMachine {
        name: recipe.name.clone(),
        accel,
        memory_mib: recipe.memory,
        cpus: recipe.cpus,
        disk: dir.join(files::DISK),
        firmware_code: FirmwareFiles::debian(w.secure_boot).code,
        vars: dir.join(names::VARS),
        secure_boot: w.secure_boot,
        tpm_socket: w.tpm.then(|| dir.join(names::TPM_SOCKET)),
        install: install.map(|m| InstallMedia { answer: dir.join(names::ANSWER_MEDIA), ..m }),
        ssh_port: recipe.ssh_port,
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_owned())
}
