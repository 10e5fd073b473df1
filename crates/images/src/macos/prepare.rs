//! `vmkit image prepare` for macOS recipes: everything up to the installer's first boot, and nothing after.
//!
//! In order, so that nothing is downloaded for a host that cannot run the result: the host pre-flight
//! ([`super::machine::preflight`]: KVM, CPU features, memory — TCG only when asked for); the pinned OpenCore
//! release, fetched into the cache and verified against its SHA-256 (or a local one), and the files vmkit needs
//! read from it; the image's Mac identity ([`super::smbios`]) — kept from the directory being replaced when it
//! has one, generated otherwise; OpenCore's `config.plist` from the typed model ([`super::opencore`]) and the
//! GPT/FAT32 boot disk carrying both ([`super::bootdisk`]); the recovery image — a local one, or fetched from
//! Apple and verified by its signed chunklist (`fetch::macos`) — converted to a raw installer disk
//! (`media::dmg`); an empty qcow2 system disk; this VM's copy of OVMF's variables; and an `install` script that
//! starts the machine profile ([`super::machine`]) with all three disks.
//!
//! `prepared.json` records what went in (OpenCore's URL and digest, the recovery image's digest and, when
//! fetched, Apple's product id and whether its chunklist was signed), the accelerator, and the identity — the
//! one place the identity is kept besides the boot disk itself. Nothing prints it.
//!
//! All or nothing, as for Windows: the directory is assembled hidden beside the output and renamed into place
//! last; an existing output is replaced only when asked.

use std::path::{Path, PathBuf};

use qemu::{KvmProbe, RunScript};
use serde::{Deserialize, Serialize};

use super::bootdisk::BootDisk;
use super::kexts::KextRecord;
use super::machine::{HostFacts, MacMachine, preflight};
use super::opencore::{CONFIG_PATH, Config, OpenCoreFiles, VmSettings};
use super::smbios::{MacIdentity, MacModel};
use crate::build::OutputPlace;
use crate::build::{BuildError, files};
use crate::fsutil::WorkDir;
use crate::macos::source::MacosSource;
use crate::recipe::Recipe;
use crate::windows::MediaSource;
use crate::windows::machine::FirmwareFiles;
use crate::windows::prepare::{MediaRecord, resolve_media};

/// File names in a prepared macOS directory.
pub mod names {
    /// OpenCore's boot disk (raw GPT, FAT32 ESP).
    pub const OPENCORE: &str = "opencore.img";
    /// The installer disk (raw, converted from the recovery image).
    pub const INSTALLER: &str = "installer.img";
    /// OpenCore's configuration as written to the boot disk, for inspection.
    pub const CONFIG: &str = "config.plist";
    /// This VM's UEFI variable store, the install script, what was prepared (named as for Windows).
    pub use crate::build::files::{INSTALL, PREPARED, VARS};
}

/// The boot disk's size: room for OpenCore and its drivers many times over, above FAT32's minimum.
pub const BOOT_DISK_SIZE: u64 = 64 << 20;

/// How to prepare.
#[derive(Debug, Clone)]
pub struct PrepareOptions {
    /// The output directory.
    pub out: PathBuf,
    /// vmkit's cache root.
    pub cache_root: PathBuf,
    /// Replace an existing output directory (keeping its Mac identity).
    pub replace: bool,
    /// A recovery image on disk, overriding the recipe's (`--recovery`).
    pub recovery: Option<PathBuf>,
    /// An OpenCore release on disk, overriding the recipe's (`--opencore`).
    pub opencore: Option<PathBuf>,
    /// Run under TCG when KVM is not usable (`--allow-tcg`).
    pub allow_tcg: bool,
    /// Download progress.
    pub progress: fetch::ProgressMode,
    /// No step messages.
    pub quiet: bool,
    /// Where step messages go; `None`: only `tracing` events.
    pub sink: Option<crate::build::ProgressSink>,
}

/// The recovery image used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryRecord {
    /// Where it is on this host.
    pub path: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// Apple's product id, when fetched from Apple.
    pub product: Option<String>,
    /// Whether its chunklist was signed, when fetched from Apple.
    pub signed: Option<bool>,
}

/// What `prepared.json` says.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Prepared {
    /// The recipe's name.
    pub name: String,
    /// vmkit's version.
    pub vmkit: String,
    /// The macOS version.
    pub version: String,
    /// The OpenCore release.
    pub opencore: MediaRecord,
    /// The recovery image.
    pub recovery: RecoveryRecord,
    /// The boot arguments written to NVRAM.
    pub boot_args: String,
    /// The kext releases on the boot disk and the bundles taken from each.
    pub kexts: Vec<KextRecord>,
    /// The Mac the guest presents (kept across `--replace`).
    pub identity: MacIdentity,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Why.
    pub accel_reason: String,
}

/// The identity recorded in a prepared directory: `None` when it has none, an error when it is not well formed.
pub fn recorded_identity(dir: &Path) -> Result<Option<MacIdentity>, BuildError> {
    #[derive(Deserialize)]
    struct Recorded {
        // Absent in directories that are not macOS ones (a Windows prepare replaced by a macOS one).
        identity: Option<MacIdentity>,
    }
    let path = dir.join(names::PREPARED);
    if !path.is_file() {
        return Ok(None);
    }
    let bytes = userfile::read(&path, userfile::Limit::Config).map_err(|e| BuildError::Io {
        op: "reading",
        path: path.clone(),
        source: e.into_io(),
    })?;
    let recorded: Recorded = serde_json::from_slice(&bytes).map_err(|e| BuildError::Io {
        op: "reading the Mac identity of",
        path: path.clone(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    if let Some(identity) = &recorded.identity {
        identity.validate()?;
    }
    Ok(recorded.identity)
}

/// Prepares a macOS recipe into `opts.out`.
pub async fn prepare(recipe: &Recipe, m: &MacosSource, opts: &PrepareOptions) -> Result<Prepared, BuildError> {
    let say = crate::build::Say::with_sink(&recipe.name, opts.quiet, opts.sink.clone());
    if opts.out.exists() && !opts.replace {
        return Err(BuildError::OutputExists { path: opts.out.clone() });
    }
    let kept = recorded_identity(&opts.out)?;
    let OutputPlace { name: out_name, parent, partial } = OutputPlace::of(&opts.out, &recipe.name);
    WorkDir::sweep_stale(&parent, &partial);
    // The pre-flight runs before the work directory exists: a host that cannot run the result gets nothing.
    let host = host_check(recipe, m, opts, &say).await?;
    let work = WorkDir::create(&parent, &partial)?;
    let made = prepare_into(recipe, m, work.path(), opts, host, kept, &say).await?;
    crate::build::publish(work, &opts.out, &out_name, &parent)?;
    say.line(&format!("prepared {}: run {} to install", opts.out.display(), opts.out.join(names::INSTALL).display()));
    Ok(made.prepared)
}

/// What the host check decided.
#[derive(Debug, Clone)]
pub(crate) struct HostVerdict {
    /// The accelerator to use.
    pub(crate) accel: qemu::Accel,
    /// The probe's reason.
    pub(crate) reason: String,
}

/// The host pre-flight (firmware present, KVM, CPU features, memory; TCG only when allowed): before anything is
/// downloaded or made.
pub(crate) async fn host_check(
    recipe: &Recipe,
    m: &MacosSource,
    opts: &PrepareOptions,
    say: &crate::build::Say,
) -> Result<HostVerdict, BuildError> {
    let firmware = FirmwareFiles::debian(false);
    if let Some(missing) = firmware.missing() {
        return Err(BuildError::Firmware { path: missing.to_owned() });
    }
    let probe = KvmProbe::with_cache_dir(Some(opts.cache_root.join("kvm-probe")));
    let accel = probe.choose().await?;
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let host = HostFacts::from_proc(
        &read("/proc/cpuinfo"),
        &read("/proc/meminfo"),
        accel.accel == qemu::Accel::Kvm,
        &accel.reason,
    );
    let verdict = preflight(m.version, recipe.memory, &host, opts.allow_tcg);
    if !verdict.problems.is_empty() {
        return Err(BuildError::Preflight { version: m.version.name(), problems: verdict.problems.join("; ") });
    }
    for warning in &verdict.warnings {
        say.line(&format!("warning: {warning}"));
    }
    Ok(HostVerdict { accel: verdict.accel.unwrap_or(accel.accel), reason: accel.reason })
}

/// What [`prepare_into`] made, for the build that goes on from there.
pub(crate) struct Made {
    pub(crate) prepared: Prepared,
}

/// Everything up to the installer's first boot, written into the existing directory `dir`, on a host `host_check`
/// passed; `kept` is the identity to keep (when its model is the recipe's).
pub(crate) async fn prepare_into(
    recipe: &Recipe,
    m: &MacosSource,
    dir: &Path,
    opts: &PrepareOptions,
    host: HostVerdict,
    kept: Option<MacIdentity>,
    say: &crate::build::Say,
) -> Result<Made, BuildError> {
    let firmware = FirmwareFiles::debian(false);
    let accel_used = host.accel;
    let source = opts.opencore.clone().map_or_else(|| m.opencore.clone(), MediaSource::Path);
    let opencore = match &source {
        // An unpacked release: read in place, file by file.
        MediaSource::Path(path) if path.is_dir() => {
            MediaRecord { path: path.clone(), url: None, sha256: None, size: 0 }
        }
        _ => resolve_media("OpenCore release", None, Some(&source), &opts.cache_root, opts.progress, say).await?,
    };
    let release = OpenCoreFiles::read(&opencore.path)?;
    let mut kexts = Vec::new();
    let mut bundles = Vec::new();
    for k in &m.kexts {
        let record =
            resolve_media("kext release", None, Some(&k.release), &opts.cache_root, opts.progress, say).await?;
        let got = super::kexts::read_release(&record.path, &k.bundles)?;
        kexts.push(KextRecord { release: record, bundles: got.iter().map(|b| b.name.clone()).collect() });
        bundles.extend(got);
    }
    let bundles = super::kexts::ordered(bundles)?;

    let model = MacModel::named(&m.model).unwrap_or_else(|| MacModel::default_for(m.version));
    let identity = match kept {
        Some(kept) if kept.model == model.name => {
            say.line("keeping the Mac identity of the directory being replaced");
            kept
        }
        _ => MacIdentity::generate(model),
    };
    let settings =
        VmSettings { verbose: m.verbose_boot, extra_boot_args: m.boot_args.clone(), ..VmSettings::default() };
    let mut config = Config::for_vm(&identity, &settings);
    config.kernel.add = bundles.iter().map(super::kexts::KextBundle::entry).collect();
    let config = config.render();

    let mut disk = BootDisk::new(BOOT_DISK_SIZE, "OPENCORE");
    for (path, bytes) in &release.files {
        disk = disk.file(path, bytes.clone());
    }
    for bundle in &bundles {
        for (path, bytes) in bundle.esp_files() {
            disk = disk.file(&path, bytes.clone());
        }
    }
    disk = disk.file(CONFIG_PATH, config.clone());
    disk.write(&dir.join(names::OPENCORE))?;
    crate::build::write_mode(&dir.join(names::CONFIG), &config, 0o644)?;
    let with = if bundles.is_empty() {
        String::new()
    } else {
        format!(" and {}", bundles.iter().map(|b| b.name.as_str()).collect::<Vec<_>>().join(", "))
    };
    say.line(&format!("boot disk: OpenCore with a {} identity{with}", identity.model));

    let recovery = recovery_image(m, opts, say).await?;
    let udif = media::dmg::Udif::open(&recovery.path)?;
    udif.convert(&recovery.path, &dir.join(names::INSTALLER))?;
    say.line("installer disk converted from the recovery image");

    crate::tools::create_disk(&dir.join(files::DISK), recipe.disk_bytes).await?;
    let vars = std::fs::read(&firmware.vars_template).map_err(|source| BuildError::Io {
        op: "reading",
        path: firmware.vars_template.clone(),
        source,
    })?;
    crate::build::write_mode(&dir.join(names::VARS), &vars, 0o644)?;

    let machine = machine_in(Path::new(""), recipe, m, &identity, accel_used, true);
    let script = RunScript {
        comments: vec![
            format!(
                "{} — the macOS {} install prepared by vmkit {} ({accel_used}).",
                recipe.name,
                m.version,
                env!("CARGO_PKG_VERSION")
            ),
            "Boots OpenCore, whose picker starts the installer disk after its timeout. Extra arguments go to QEMU,"
                .to_owned(),
            "e.g. -vnc 127.0.0.1:1 to watch it (vmkit automate run drives the install over that VNC).".to_owned(),
        ],
        cd_to_script_dir: true,
        pass_args: true,
        before: Vec::new(),
        // The install writes to this directory's own disk and VARS, as the Windows install does.
        state: None,
    }
    .render(&machine.command())?;
    crate::build::write_mode(&dir.join(names::INSTALL), script.as_bytes(), 0o755)?;

    let prepared = Prepared {
        name: recipe.name.clone(),
        vmkit: env!("CARGO_PKG_VERSION").to_owned(),
        version: m.version.name().to_owned(),
        opencore,
        recovery,
        boot_args: settings.boot_args(),
        kexts,
        identity,
        accel: accel_used.to_string(),
        accel_reason: host.reason,
    };
    let json = serde_json::to_vec_pretty(&prepared).unwrap_or_default();
    crate::build::write_mode(&dir.join(names::PREPARED), &json, 0o644)?;
    Ok(Made { prepared })
}

/// The recovery image: given on the command line or in the recipe, or fetched from Apple and verified.
async fn recovery_image(
    m: &MacosSource,
    opts: &PrepareOptions,
    say: &crate::build::Say,
) -> Result<RecoveryRecord, BuildError> {
    if let Some(path) = opts.recovery.as_ref().or(m.recovery.as_ref()) {
        let meta = std::fs::metadata(path).map_err(|e| BuildError::MediaUnreadable {
            what: "recovery image".to_owned(),
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if !meta.is_file() {
            return Err(BuildError::MediaUnreadable {
                what: "recovery image".to_owned(),
                path: path.clone(),
                reason: "not a regular file".to_owned(),
            });
        }
        let sha256 = fetch::Sha256::of_file(path)?.to_hex();
        return Ok(RecoveryRecord { path: path.clone(), sha256, size: meta.len(), product: None, signed: None });
    }
    say.line(&format!("fetching the macOS {} recovery image from Apple", m.version));
    let fetcher =
        fetch::Fetcher::new(fetch::Cache::at(&opts.cache_root))?.progress(opts.progress).lines(say.fetch_lines());
    let got = fetch::macos::Recovery::new(fetcher)?.fetch(m.version).await?;
    Ok(RecoveryRecord {
        path: got.image.path,
        sha256: got.image.sha256.to_hex(),
        size: got.image.size,
        product: Some(got.product),
        signed: Some(got.trust == fetch::chunklist::Trust::Signed),
    })
}

/// The macOS machine of an image directory `dir` (`""` for paths relative to it, as the scripts use); with
/// `installing`, the installer disk attached.
pub fn machine_in(
    dir: &Path,
    recipe: &Recipe,
    m: &MacosSource,
    identity: &MacIdentity,
    accel: qemu::Accel,
    installing: bool,
) -> MacMachine {
    MacMachine {
        name: recipe.name.clone(),
        version: m.version,
        accel,
        memory_mib: recipe.memory,
        cpus: recipe.cpus,
        ovmf_code: FirmwareFiles::debian(false).code,
        ovmf_vars: dir.join(names::VARS),
        opencore: dir.join(names::OPENCORE),
        installer: installing.then(|| dir.join(names::INSTALLER)),
        system: dir.join(files::DISK),
        ssh_port: recipe.ssh_port,
        mac: identity.mac_address(),
    }
}
