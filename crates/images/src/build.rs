//! `vmkit image build`: a recipe in, a ready image directory out — or nothing at all.
//!
//! Steps: base image (a verified download, or a cached Debian base) → SSH key pair → NoCloud seeds (the build's,
//! with the whole recipe; the image's, with only the hostname and login) → qcow2 overlay on the base, resized →
//! QEMU from the [`ImageMachine`] model (KVM if the probe says it works, else TCG; SSH forwarded on 127.0.0.1
//! only; the serial console logged) → wait for SSH → `cloud-init status --wait` → provisioning → `fstrim` →
//! generalise (cloud-init state, machine id and SSH host keys removed; the build boot's identity recorded) →
//! shutdown ladder (guest power-off, ACPI, `quit`, SIGKILL) → compact the disk into a standalone qcow2 → `run`
//! script from the same model → `manifest.json` with the SHA-256 of every file.
//!
//! The image is the artefact: its `run` script boots an overlay in a state directory beside it
//! ([`qemu::VmState`]), so a VM's changes survive a rebuild and the image stays as built.
//!
//! Guarantees:
//! * **Same inputs, no work.** The inputs' digest is compared with the existing manifest before anything else;
//!   a match with every output present (sizes checked, no hashing) is reported as up to date.
//! * **All or nothing.** Everything happens in a hidden work directory beside the output (same filesystem), which
//!   is renamed into place last. An error or a cancelled future (Ctrl-C) removes it, killing QEMU first; after a
//!   SIGKILL the next build sweeps the leftover (and its QEMU, through the pidfile) away. The output directory is
//!   never half-written.
//! * **A dead QEMU is noticed at once.** Every wait on the guest races [`qemu::Qemu::exited`], and the error
//!   carries QEMU's last words and the end of the guest's console.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cloudinit::{CloudConfig, KeyPair, Seed, SeedFormat, User, WriteFile};
use qemu::{KvmProbe, Qemu, QemuCommand, QemuError, RunScript, StartOptions, StopPlan, StopStep};

use crate::debootstrap::{DebootstrapError, ensure_base};
use crate::fsutil::{FsError, QEMU_PIDFILE, WorkDir, remove_work_dir, sweep_old_outputs};
use crate::guest::{GuestError, GuestIdentity, GuestSsh};
use crate::machine::{BootKind, ImageMachine};
use crate::manifest::{
    BaseRecord, MANIFEST, MANIFEST_FORMAT, MachineRecord, Manifest, OutputRecord, SshRecord, record,
};
use crate::recipe::{Recipe, Source};
use crate::tools::{ToolError, compact, create_overlay, image_info, version};
use serde::Serialize;

/// Bump when the same recipe would build a different image: existing outputs are then rebuilt.
const BUILD_REVISION: u32 = 1;

/// Output file names.
pub mod files {
    /// The disk.
    pub const DISK: &str = "disk.qcow2";
    /// The NoCloud seed.
    pub const SEED: &str = "seed.iso";
    /// The kernel (Debian source).
    pub const KERNEL: &str = "vmlinuz";
    /// The initrd (Debian source).
    pub const INITRD: &str = "initrd.img";
    /// The private key (generated keys only); the public key is `id_ed25519.pub`.
    pub const KEY: &str = "id_ed25519";
    /// The run script.
    pub const RUN: &str = "run";
    /// The build's serial console.
    pub const SERIAL: &str = "serial.log";
    /// A prepared machine's UEFI variable store (Windows, macOS).
    pub const VARS: &str = "OVMF_VARS.fd";
    /// A prepared machine's install script (Windows, macOS).
    pub const INSTALL: &str = "install";
    /// What was prepared (Windows, macOS).
    pub const PREPARED: &str = "prepared.json";
}

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The output directory.
    pub out: PathBuf,
    /// vmkit's cache root (downloads, Debian bases, the KVM probe's verdict).
    pub cache_root: PathBuf,
    /// How long the guest may take until SSH lets the user in.
    pub boot_timeout: Duration,
    /// How long cloud-init may take after that.
    pub cloud_init_timeout: Duration,
    /// How long one provisioning command may take.
    pub command_timeout: Duration,
    /// Progress of downloads.
    pub progress: fetch::ProgressMode,
    /// No step messages.
    pub quiet: bool,
    /// Where step messages (and download progress lines) go; `None`: only `tracing` events (the library never
    /// prints).
    pub sink: Option<ProgressSink>,
    /// Windows: how often a long wait (the install) reports that it is still waiting.
    pub progress_every: Duration,
    /// Windows: media given on the command line instead of the recipe's.
    pub media: crate::windows::prepare::MediaOverrides,
    /// macOS: the recovery image, OpenCore release and TCG permission given on the command line.
    pub macos: crate::macos::build::MacosOverrides,
}

/// One step message of a build: the image, the time since the build started, what is happening.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgressEvent {
    /// The recipe's name.
    pub image: String,
    /// Since the build started.
    pub elapsed: Duration,
    /// What is happening (a phase name first for Windows builds: `setup: waiting for SSH …`).
    pub message: String,
}

/// Receives a build's [`ProgressEvent`]s; the binary prints them (the library never does when one is given).
#[derive(Clone)]
pub struct ProgressSink(pub std::sync::Arc<dyn Fn(&ProgressEvent) + Send + Sync>);

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressSink")
    }
}

impl BuildOptions {
    /// Defaults sized for TCG on a small machine: 20 min to SSH, 30 min for cloud-init, 60 min per command.
    pub fn new(out: PathBuf, cache_root: PathBuf) -> Self {
        Self {
            out,
            cache_root,
            boot_timeout: Duration::from_secs(20 * 60),
            cloud_init_timeout: Duration::from_secs(30 * 60),
            command_timeout: Duration::from_secs(60 * 60),
            progress: fetch::ProgressMode::Auto,
            quiet: false,
            sink: None,
            progress_every: Duration::from_secs(60),
            media: crate::windows::prepare::MediaOverrides::default(),
            macos: crate::macos::build::MacosOverrides::default(),
        }
    }
}

/// What a build did.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The output already matched the inputs; nothing was done.
    UpToDate(Box<Manifest>),
    /// A new image was built.
    Built(Box<Manifest>),
}

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The output path holds something that is not a vmkit image.
    #[error("{} exists and is not a vmkit image directory (no readable manifest.json); refusing to replace it", path.display())]
    OutputInTheWay {
        /// The path.
        path: PathBuf,
    },
    /// The disk size is below the base image's.
    #[error("diskSize {asked} is smaller than the base image ({base_bytes} bytes)")]
    DiskTooSmall {
        /// As written.
        asked: String,
        /// The base's virtual size.
        base_bytes: u64,
    },
    /// QEMU exited while the build waited on the guest.
    #[error("QEMU exited while {step} ({exit}); the guest's console ({}) ends with:\n{tail}", log.display())]
    QemuDied {
        /// What the build was doing.
        step: String,
        /// QEMU's exit and its output.
        exit: String,
        /// The serial log.
        log: PathBuf,
        /// The end of the serial log.
        tail: String,
    },
    /// The guest did not do what was asked.
    #[error("{step}: {source}; the guest's console ({}) ends with:\n{tail}", log.display())]
    Guest {
        /// What the build was doing.
        step: String,
        /// The SSH-level error.
        source: Box<GuestError>,
        /// The serial log.
        log: PathBuf,
        /// The end of the serial log.
        tail: String,
    },
    /// cloud-init finished with errors.
    #[error("cloud-init reported errors:\n{status}")]
    CloudInit {
        /// `cloud-init status --long`.
        status: String,
    },
    /// Downloading the base failed.
    #[error(transparent)]
    Fetch(#[from] fetch::FetchError),
    /// Building the Debian base failed.
    #[error(transparent)]
    Debian(#[from] DebootstrapError),
    /// A tool failed.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// A work-directory operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// Keys or the seed failed.
    #[error(transparent)]
    CloudInitSeed(#[from] cloudinit::CloudInitError),
    /// QEMU could not be started or stopped.
    #[error(transparent)]
    Qemu(#[from] QemuError),
    /// The accelerator probe failed.
    #[error(transparent)]
    Probe(#[from] qemu::accel::ProbeError),
    /// The QEMU model did not render.
    #[error(transparent)]
    Model(#[from] qemu::ModelError),
    /// The output directory exists and replacing it was not asked for.
    #[error("{} exists; pass --replace to replace it", path.display())]
    OutputExists {
        /// The path.
        path: PathBuf,
    },
    /// No media of this kind in the recipe or on the command line.
    #[error("no {what}: give it in the recipe or on the command line (--iso PATH / --virtio PATH)")]
    MissingMedia {
        /// Which media.
        what: String,
    },
    /// A local media file cannot be used.
    #[error("{what} {}: {reason}", path.display())]
    MediaUnreadable {
        /// Which media.
        what: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A firmware file is missing.
    #[error("{} is missing (Debian package ovmf)", path.display())]
    Firmware {
        /// The file.
        path: PathBuf,
    },
    /// The answer file could not be made.
    #[error(transparent)]
    Answer(#[from] crate::windows::answer::AnswerError),
    /// The answer media could not be written.
    #[error(transparent)]
    Fat(#[from] crate::fat::FatError),
    /// The install ISO or the VirtIO media is not what it should be.
    #[error(transparent)]
    Media(#[from] media::Error),
    /// swtpm failed.
    #[error(transparent)]
    Swtpm(#[from] qemu::SwtpmError),
    /// The build boot's identity could not be read, so the image could not be generalised.
    #[error("reading the build boot's identity (machine id, SSH host keys) to remove it: {why}")]
    Generalise {
        /// What was wrong.
        why: String,
    },
    /// A phase of a Windows build failed.
    #[error("{phase} failed: {source}")]
    Phase {
        /// The phase (`prepare`, `boot`, `setup`, `provision`, `shutdown`, `compact`, `finish`).
        phase: &'static str,
        /// Why.
        source: Box<BuildError>,
    },
    /// The recipe's automation script cannot be loaded.
    #[error("automate: {0}")]
    Script(String),
    /// The recipe's automation script ran and failed.
    #[error("the automation script {} failed: {detail}", script.display())]
    Automation {
        /// The script.
        script: PathBuf,
        /// The failing step and why.
        detail: String,
    },
    /// The guest neither powered off over SSH nor on the ACPI power button.
    #[error(
        "the guest did not power off (asked over SSH, then by the ACPI power button); QEMU was killed and the image is not kept, as its file systems may be inconsistent"
    )]
    NotShutDown,
    /// A Linux-only step was given a Windows recipe.
    #[error("{0} is for Linux recipes; Windows recipes are prepared and built from their install media")]
    WindowsRecipe(&'static str),
    /// The guest's Secure Boot / TPM state is not what the recipe asked for.
    #[error("{0}")]
    Security(String),
    /// A macOS recipe reached a Linux-only step.
    #[error("this step is for Linux recipes; macOS recipes are built from their recovery image (docs/macos.md)")]
    MacosNotBuilt,
    /// The host cannot run the macOS version (the pre-flight's reasons).
    #[error("this host cannot run macOS {version}: {problems}")]
    Preflight {
        /// The version.
        version: &'static str,
        /// Why not.
        problems: String,
    },
    /// The OpenCore release is not usable.
    #[error(transparent)]
    OpenCore(#[from] crate::macos::opencore::OpenCoreError),
    /// A kext release is not usable.
    #[error(transparent)]
    Kext(#[from] crate::macos::kexts::KextError),
    /// The macOS boot disk could not be written.
    #[error(transparent)]
    BootDisk(#[from] crate::macos::bootdisk::BootDiskError),
    /// The recovery image could not be converted.
    #[error(transparent)]
    Dmg(#[from] media::dmg::DmgError),
    /// A recorded Mac identity is damaged.
    #[error(transparent)]
    Identity(#[from] crate::macos::smbios::IdentityError),
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl BuildError {
    /// True when the user's input is at fault (exit code 2).
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Self::OutputInTheWay { .. }
                | Self::DiskTooSmall { .. }
                | Self::OutputExists { .. }
                | Self::MissingMedia { .. }
                | Self::MediaUnreadable { .. }
                | Self::Answer(_)
                | Self::Script(_)
                | Self::MacosNotBuilt
                | Self::OpenCore(_)
                | Self::Identity(_)
        ) || matches!(self, Self::Phase { source, .. } if source.is_bad_input())
            || matches!(self, Self::Fetch(e) if e.is_bad_input())
            || matches!(self, Self::Dmg(e) if !matches!(e, media::dmg::DmgError::Io { .. }))
            || matches!(self, Self::Kext(e) if !matches!(e, crate::macos::kexts::KextError::Io { .. }))
            || matches!(self, Self::CloudInitSeed(e) if e.is_bad_input())
    }
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> BuildError + 'a {
    move |source| BuildError::Io { op, path: path.to_owned(), source }
}

/// Step messages, with the time since the build started: to the caller's [`ProgressSink`], else as `tracing`
/// events.
#[derive(Clone)]
pub(crate) struct Say {
    started: Instant,
    name: String,
    quiet: bool,
    sink: Option<ProgressSink>,
}

impl Say {
    pub(crate) fn new(name: &str, quiet: bool) -> Self {
        Self { started: Instant::now(), name: name.to_owned(), quiet, sink: None }
    }

    pub(crate) fn with_sink(name: &str, quiet: bool, sink: Option<ProgressSink>) -> Self {
        Self { sink, ..Self::new(name, quiet) }
    }

    pub(crate) fn line(&self, msg: &str) {
        if self.quiet {
            return;
        }
        match &self.sink {
            Some(sink) => (sink.0)(&ProgressEvent {
                image: self.name.clone(),
                elapsed: self.started.elapsed(),
                message: msg.to_owned(),
            }),
            None => tracing::info!(image = %self.name, elapsed_s = self.started.elapsed().as_secs_f64(), "{msg}"),
        }
    }

    /// A fetcher's progress lines as step messages of this build.
    pub(crate) fn fetch_lines(&self) -> fetch::LineSink {
        let say = self.clone();
        fetch::LineSink(std::sync::Arc::new(move |line: &str| say.line(line)))
    }

    pub(crate) fn elapsed(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// The inputs as recorded in the manifest, and their digest.
pub fn inputs_of(recipe: &Recipe) -> Result<(serde_json::Value, String), BuildError> {
    let mut value = serde_json::to_value(recipe).map_err(|e| BuildError::Io {
        op: "recording the recipe of",
        path: PathBuf::from(&recipe.name),
        source: std::io::Error::other(e),
    })?;
    if let (Some(key), Some(obj)) = (&recipe.ssh_key, value.as_object_mut()) {
        // The key's identity, not where the file happens to be.
        let public = KeyPair::load(key)?.public_openssh();
        obj.insert("sshKey".into(), serde_json::Value::String(public));
    }
    let digest_input = serde_json::json!({
        "vmkit": env!("CARGO_PKG_VERSION"),
        "revision": BUILD_REVISION,
        "recipe": value,
    });
    let digest = fetch::Sha256::of_bytes(digest_input.to_string().as_bytes()).to_hex();
    Ok((value, digest))
}

/// The manifest of `out` if it was built from exactly these inputs and every output is still there.
pub fn up_to_date(out: &Path, inputs_sha256: &str) -> Option<Manifest> {
    let manifest = Manifest::load(out).ok()?;
    (manifest.inputs_sha256 == inputs_sha256 && manifest.outputs_present(out)).then_some(manifest)
}

/// The cloud-config a recipe asks for.
pub fn cloud_config(recipe: &Recipe, key: &KeyPair) -> CloudConfig {
    let mut config = CloudConfig::new(&recipe.hostname);
    config.users.push(User::admin(&recipe.username, vec![key.public_openssh()]));
    config.packages = recipe.provision.packages.clone();
    if recipe.install_nix && !config.packages.iter().any(|p| p == NIX_PACKAGE) {
        // From the distribution's archive on first boot, for either source: debootstrap cannot resolve the
        // package's Perl dependencies in its first stage.
        config.packages.push(NIX_PACKAGE.to_owned());
    }
    config.write_files = recipe
        .provision
        .files
        .iter()
        .map(|f| WriteFile {
            path: f.path.clone(),
            content: f.content.clone(),
            permissions: Some(f.mode),
            owner: None,
            append: false,
        })
        .collect();
    config
}

/// The cloud-config a built image ships (`seed.iso`): the hostname and the login, nothing to install or write —
/// the build did that — so a VM's first boot only makes its own identity (host keys, machine id).
pub fn run_config(recipe: &Recipe, key: &KeyPair) -> CloudConfig {
    let mut config = CloudConfig::new(&recipe.hostname);
    config.users.push(User::admin(&recipe.username, vec![key.public_openssh()]));
    config
}

/// The seed the build boots with (the whole recipe); not part of the image.
const BUILD_SEED: &str = "build-seed.iso";

/// Removes what the build boot made that must be each VM's own, then asks for a power-off two seconds later:
/// cloud-init's instance state and logs (so cloud-init treats the next boot as a new instance and makes new SSH
/// host keys), the SSH host keys, and the machine id. `/etc/machine-id` is left empty — systemd then makes a new
/// id at boot — rather than `uninitialized`, which would also make the boot a "first boot" and enable every unit
/// by preset (on Debian that starts `systemd-networkd-wait-online`, which then waits for links it does not
/// manage). D-Bus's copy goes too when it is a file of its own.
const GENERALISE: &str = "cloud-init clean --logs && : >/etc/machine-id && \
     { [ -L /var/lib/dbus/machine-id ] || rm -f /var/lib/dbus/machine-id; } && \
     rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub && sync && \
     systemd-run --quiet --on-active=2 systemctl poweroff";

/// Debian's package that installs Nix with its daemon and the `nix-users` group.
pub const NIX_PACKAGE: &str = "nix-setup-systemd";

struct Base {
    disk: PathBuf,
    format: String,
    virtual_size: u64,
    kernel: Option<(PathBuf, PathBuf)>,
    record: BaseRecord,
    tools: Vec<(String, String)>,
}

/// Builds `recipe` into `opts.out` (or reports it up to date).
pub async fn build(recipe: &Recipe, opts: &BuildOptions) -> Result<Outcome, BuildError> {
    if let Source::Windows(w) = &recipe.source {
        return crate::windows::build::build(recipe, w, opts).await;
    }
    if let Source::Macos(m) = &recipe.source {
        return crate::macos::build::build(recipe, m, opts).await;
    }
    let say = Say::with_sink(&recipe.name, opts.quiet, opts.sink.clone());
    let (inputs, inputs_sha256) = inputs_of(recipe)?;
    if let Some(manifest) = up_to_date(&opts.out, &inputs_sha256) {
        return Ok(Outcome::UpToDate(Box::new(manifest)));
    }
    let Staging { work, out_name, parent } = stage(&opts.out, &recipe.name)?;
    let w = work.path().to_owned();
    let mut timings = std::collections::BTreeMap::new();
    let mut tools = std::collections::BTreeMap::new();

    // Base, keys, seed, disk.
    let t = Instant::now();
    let FirstBoot { base, keypair, key_path, private_key, boot } =
        first_boot(recipe, opts, &say, &w, WORK_DISK, BUILD_SEED).await?;
    timings.insert("base".to_owned(), t.elapsed().as_secs_f64());
    tools.extend(base.tools.iter().cloned());
    let work_disk = w.join(WORK_DISK);
    // The build boots with the whole recipe (the build seed, from first_boot); the image ships a seed that only
    // names the machine and its login, so a VM's first boot makes its own identity without installing anything
    // again.
    Seed::new(&run_config(recipe, &keypair), None)?.write_image(&w.join(files::SEED), SeedFormat::Iso)?;

    // QEMU.
    let probe = KvmProbe::with_cache_dir(Some(opts.cache_root.join("kvm-probe")));
    let accel = probe.choose().await?;
    say.line(&format!("booting under {} ({})", accel.accel, accel.reason));
    // Unix socket paths are limited to 108 bytes, so QMP and the serial port live in a short directory under /tmp
    // (locked like the work directory, and swept the same way after a SIGKILL).
    WorkDir::sweep_stale(&std::env::temp_dir(), "vmkit-build-sockets-");
    let sockets = WorkDir::create(&std::env::temp_dir(), "vmkit-build-sockets-")?;
    let serial_log = w.join(files::SERIAL);
    let mut machine = ImageMachine {
        name: recipe.name.clone(),
        accel: accel.accel,
        memory_mib: recipe.memory,
        cpus: recipe.cpus,
        disk: work_disk.clone(),
        seed: Some(w.join(BUILD_SEED)),
        boot,
        ssh_port: 0,
    };
    let t = Instant::now();
    let (qemu, port) = start_machine(&mut machine, sockets.path(), &serial_log, &w).await?;
    let ssh = GuestSsh::local(port, &recipe.username, key_path.clone());
    let guard = Watch { qemu: &qemu, log: &serial_log };

    guard.step("waiting for SSH", ssh.wait_ready(opts.boot_timeout, Duration::from_millis(100))).await?;
    timings.insert("bootToSsh".to_owned(), t.elapsed().as_secs_f64());
    say.line(&format!(
        "SSH answers on 127.0.0.1:{port} after {:.1}s; waiting for cloud-init",
        t.elapsed().as_secs_f64()
    ));

    let t = Instant::now();
    let status =
        guard.run("waiting for cloud-init", ssh.run("cloud-init status --wait", opts.cloud_init_timeout, 3)).await?;
    if let Err(e) = status {
        let long = guard
            .run("asking cloud-init for details", ssh.run("cloud-init status --long", Duration::from_secs(60), 2))
            .await?
            .unwrap_or_else(|_| e.to_string());
        return Err(BuildError::CloudInit { status: long });
    }
    timings.insert("cloudInit".to_owned(), t.elapsed().as_secs_f64());
    say.line("cloud-init is done");

    let t = Instant::now();
    let mut steps: Vec<String> = Vec::new();
    if recipe.install_nix {
        steps.push(format!("usermod -aG nix-users {} && nix --version", recipe.username));
    }
    steps.extend(recipe.provision.commands.iter().cloned());
    for (i, line) in steps.iter().enumerate() {
        say.line(&format!("provisioning {}/{}: {line}", i + 1, steps.len()));
        guard.step(&format!("provisioning command {}", i + 1), ssh.run_as_root(line, opts.command_timeout)).await?;
    }
    timings.insert("provision".to_owned(), t.elapsed().as_secs_f64());

    let versions = guard
        .step(
            "reading versions in the guest",
            ssh.run("cloud-init --version 2>&1; uname -r", Duration::from_secs(60), 2),
        )
        .await?;
    let mut lines = versions.lines();
    tools.insert("guest cloud-init".to_owned(), lines.next().unwrap_or("").trim().to_owned());
    tools.insert("guest kernel".to_owned(), lines.next().unwrap_or("").trim().to_owned());
    let identity = guard
        .step("reading the build boot's identity", ssh.run(GuestIdentity::QUERY, Duration::from_secs(60), 2))
        .await?;
    let build_identity = GuestIdentity::parse(&identity).map_err(|why| BuildError::Generalise { why })?;
    guard
        .step("trimming the disk", ssh.run_as_root("fstrim -a >/dev/null 2>&1 || true; sync", Duration::from_secs(600)))
        .await?;

    let t = Instant::now();
    say.line("generalising (machine id, SSH host keys, cloud-init state) and shutting down");
    // The last command over SSH: once the host keys are gone sshd takes no new connection, so the same line asks
    // for the power-off, two seconds later, after it has answered.
    guard.step("generalising the image", ssh.run_as_root(GENERALISE, Duration::from_secs(300))).await?;
    let stopped = qemu.stop(StopPlan::default().with_guest(async {}, Duration::from_secs(120))).await?;
    let shutdown = match stopped.by {
        StopStep::Guest | StopStep::AlreadyExited => "guest",
        StopStep::Powerdown => "powerdown",
        StopStep::Quit => "quit",
        StopStep::Kill => "kill",
    };
    if stopped.by == StopStep::Kill {
        say.line("warning: the guest did not power off; QEMU was killed (the filesystem was synced before)");
    }
    drop(qemu);
    timings.insert("shutdown".to_owned(), t.elapsed().as_secs_f64());
    let _ = std::fs::remove_file(w.join(QEMU_PIDFILE));

    let t = Instant::now();
    say.line("compacting the disk");
    compact(&work_disk, &w.join(files::DISK), &w.join("compact.log")).await?;
    for f in [work_disk.clone(), w.join("compact.log"), w.join(BUILD_SEED)] {
        let _ = std::fs::remove_file(f);
    }
    timings.insert("compact".to_owned(), t.elapsed().as_secs_f64());

    // The run script: the same machine, files relative to the script, the recipe's SSH port, console on the terminal.
    // The VM writes to an overlay in its state directory beside the image, never to the image (qemu::script).
    let built_at_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut pinned = vec![PathBuf::from(files::DISK), PathBuf::from(files::SEED)];
    if matches!(machine.boot, BootKind::Kernel { .. }) {
        pinned.extend([PathBuf::from(files::KERNEL), PathBuf::from(files::INITRD)]);
    }
    let state = qemu::VmState {
        build: format!("{}-{built_at_unix}", &inputs_sha256[..inputs_sha256.len().min(12)]),
        pinned,
        disk: PathBuf::from(files::DISK),
        copied: vec![],
    };
    let relative = ImageMachine {
        disk: PathBuf::from(qemu::VmState::OVERLAY),
        seed: Some(PathBuf::from(files::SEED)),
        boot: match machine.boot {
            BootKind::Kernel { .. } => BootKind::Kernel { kernel: files::KERNEL.into(), initrd: files::INITRD.into() },
            BootKind::Disk => BootKind::Disk,
        },
        ssh_port: recipe.ssh_port,
        ..machine.clone()
    };
    let login = login_hint(&opts.out, recipe.ssh_port, &recipe.username, private_key.is_some(), &key_path);
    let script = RunScript {
        comments: vec![
            format!("{} — built by vmkit {} ({}).", recipe.name, env!("CARGO_PKG_VERSION"), accel.accel),
            "Boots the image with its console on this terminal; extra arguments go to QEMU (e.g. -snapshot)."
                .to_owned(),
            "The VM's changes live in IMAGE.state beside the image (or $VMKIT_STATE), never in the image.".to_owned(),
            format!("Log in from another terminal: {login}"),
        ],
        cd_to_script_dir: true,
        pass_args: true,
        before: vec![],
        state: Some(state),
    }
    .render(&relative.interactive())?;
    write_mode(&w.join(files::RUN), script.as_bytes(), 0o755)?;

    tools.insert("qemu".to_owned(), version("qemu-system-x86_64", &["--version"], "qemu-system-x86").await?);
    tools.insert("qemu-img".to_owned(), version("qemu-img", &["--version"], "qemu-utils").await?);

    let outputs = hash_outputs(&w).await?;
    let disk_size = image_info(&w.join(files::DISK)).await?.virtual_size;
    timings.insert("total".to_owned(), say.elapsed());
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        vmkit: env!("CARGO_PKG_VERSION").to_owned(),
        name: recipe.name.clone(),
        inputs_sha256,
        inputs,
        base: base.record,
        machine: MachineRecord {
            accel: accel.accel.to_string(),
            accel_reason: accel.reason,
            memory: recipe.memory,
            cpus: recipe.cpus,
            disk: files::DISK.to_owned(),
            seed: Some(files::SEED.to_owned()),
            windows: None,
            kernel: base.kernel.as_ref().map(|_| files::KERNEL.to_owned()),
            initrd: base.kernel.as_ref().map(|_| files::INITRD.to_owned()),
            disk_size,
        },
        ssh: SshRecord::new(&recipe.username, recipe.ssh_port, private_key, &keypair),
        hostname: recipe.hostname.clone(),
        tools,
        outputs,
        shutdown: shutdown.to_owned(),
        timings,
        built_at_unix,
        build_identity: Some(build_identity),
    };
    write_manifest(&w, &manifest)?;
    publish(work, &opts.out, &out_name, &parent)?;
    say.line(&format!("built {} in {:.0}s", opts.out.display(), say.elapsed()));
    let state_dir = qemu::VmState::dir_for(&opts.out);
    if state_dir.exists() {
        say.line(&format!(
            "{} holds a VM made from an earlier build; it is kept and `run` goes on booting that build (remove it to \
             start over from this one)",
            state_dir.display()
        ));
    }
    Ok(Outcome::Built(Box::new(manifest)))
}

/// The disk a Linux build boots (compacted into [`files::DISK`] at the end).
const WORK_DISK: &str = "work.qcow2";

/// What the first boot of a Linux image needs, made in a directory.
struct FirstBoot {
    base: Base,
    keypair: KeyPair,
    /// The private key: the generated one in the directory, or the recipe's.
    key_path: PathBuf,
    /// The generated key's file name.
    private_key: Option<String>,
    boot: BootKind,
}

/// The base (cached or fetched), the key pair, the NoCloud seed `seed` with the whole recipe (what the first boot
/// installs), a qcow2 overlay `disk` on the base sized as the recipe says, and the kernel and initrd when the base
/// ships them — all in `w`.
async fn first_boot(
    recipe: &Recipe,
    opts: &BuildOptions,
    say: &Say,
    w: &Path,
    disk: &str,
    seed: &str,
) -> Result<FirstBoot, BuildError> {
    let base = base_image(recipe, opts, say).await?;
    if recipe.disk_bytes < base.virtual_size {
        return Err(BuildError::DiskTooSmall { asked: recipe.disk_size.clone(), base_bytes: base.virtual_size });
    }
    let (keypair, key_path, private_key) = match &recipe.ssh_key {
        Some(path) => (KeyPair::load(path)?, path.clone(), None),
        None => {
            let pair = KeyPair::generate(&format!("vmkit@{}", recipe.name))?;
            let written = pair.write(w, files::KEY)?;
            (pair, written.private, Some(files::KEY.to_owned()))
        }
    };
    Seed::new(&cloud_config(recipe, &keypair), None)?.write_image(&w.join(seed), SeedFormat::Iso)?;
    create_overlay(&w.join(disk), &base.disk, &base.format, recipe.disk_bytes).await?;
    let boot = match &base.kernel {
        Some((kernel, initrd)) => {
            for (from, name) in [(kernel, files::KERNEL), (initrd, files::INITRD)] {
                std::fs::copy(from, w.join(name)).map_err(io("copying", from))?;
            }
            BootKind::Kernel { kernel: w.join(files::KERNEL), initrd: w.join(files::INITRD) }
        }
        None => BootKind::Disk,
    };
    Ok(FirstBoot { base, keypair, key_path, private_key, boot })
}

/// What `vmkit image prepare` made for a Linux recipe (`prepared.json`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinuxPrepared {
    /// The recipe's name.
    pub name: String,
    /// vmkit's version.
    pub vmkit: String,
    /// The base the disk is an overlay on.
    pub base: BaseRecord,
    /// The base's file (the disk's backing file: keep it, or `qemu-img convert` the disk to make it standalone).
    pub backing: PathBuf,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Why.
    pub accel_reason: String,
    /// The public key authorised for the user.
    pub public_key: String,
}

/// `vmkit image prepare` for a Linux recipe: the base, key pair, NoCloud seed, disk (an overlay on the cached
/// base), kernel and initrd, and an `install` script that runs the first boot — everything a build boots, and no
/// boot. All or nothing, like a build; an existing `out` is replaced only when `replace` is set.
pub async fn prepare_linux(
    recipe: &Recipe,
    out: &Path,
    replace: bool,
    opts: &BuildOptions,
) -> Result<LinuxPrepared, BuildError> {
    if matches!(recipe.source, Source::Windows(_)) {
        return Err(BuildError::WindowsRecipe("prepare_linux"));
    }
    let say = Say::with_sink(&recipe.name, opts.quiet, opts.sink.clone());
    if out.exists() && !replace {
        return Err(BuildError::OutputExists { path: out.to_owned() });
    }
    let OutputPlace { name: out_name, parent, partial } = OutputPlace::of(out, &recipe.name);
    WorkDir::sweep_stale(&parent, &partial);
    let work = WorkDir::create(&parent, &partial)?;
    let w = work.path().to_owned();
    let first = first_boot(recipe, opts, &say, &w, files::DISK, files::SEED).await?;
    let accel = KvmProbe::with_cache_dir(Some(opts.cache_root.join("kvm-probe"))).choose().await?;
    let machine = ImageMachine {
        name: recipe.name.clone(),
        accel: accel.accel,
        memory_mib: recipe.memory,
        cpus: recipe.cpus,
        disk: PathBuf::from(files::DISK),
        seed: Some(PathBuf::from(files::SEED)),
        boot: match first.boot {
            BootKind::Kernel { .. } => BootKind::Kernel { kernel: files::KERNEL.into(), initrd: files::INITRD.into() },
            BootKind::Disk => BootKind::Disk,
        },
        ssh_port: recipe.ssh_port,
    };
    let login = login_hint(out, recipe.ssh_port, &recipe.username, first.private_key.is_some(), &first.key_path);
    let script = RunScript {
        comments: vec![
            format!(
                "{} — the first boot prepared by vmkit {} ({}).",
                recipe.name,
                env!("CARGO_PKG_VERSION"),
                accel.accel
            ),
            "Boots the disk with the NoCloud seed attached: cloud-init creates the user and runs the recipe's"
                .to_owned(),
            "packages and files; the console is on this terminal; extra arguments go to QEMU.".to_owned(),
            format!("Log in from another terminal: {login}"),
        ],
        cd_to_script_dir: true,
        pass_args: true,
        before: vec![],
        // The first boot installs onto the prepared disk itself, as a build's does.
        state: None,
    }
    .render(&machine.interactive())?;
    write_mode(&w.join(crate::windows::prepare::names::INSTALL), script.as_bytes(), 0o755)?;
    let prepared = LinuxPrepared {
        name: recipe.name.clone(),
        vmkit: env!("CARGO_PKG_VERSION").to_owned(),
        base: first.base.record.clone(),
        backing: first.base.disk.clone(),
        accel: accel.accel.to_string(),
        accel_reason: accel.reason,
        public_key: first.keypair.public_openssh(),
    };
    let json = serde_json::to_vec_pretty(&prepared).unwrap_or_default();
    write_mode(&w.join(crate::windows::prepare::names::PREPARED), &json, 0o644)?;
    publish(work, out, &out_name, &parent)?;
    say.line(&format!(
        "prepared {}: run {} for the first boot",
        out.display(),
        out.join(crate::windows::prepare::names::INSTALL).display()
    ));
    Ok(prepared)
}

/// Where a build's output goes: its file name (the image's name when the path has none), the directory it goes
/// into (`.` for a bare name), and the prefix of the hidden work directories made beside it.
pub(crate) struct OutputPlace {
    pub(crate) name: String,
    pub(crate) parent: PathBuf,
    pub(crate) partial: String,
}

impl OutputPlace {
    /// The place of `out`, for an image called `name`.
    pub(crate) fn of(out: &Path, name: &str) -> Self {
        let name = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| name.to_owned());
        let parent = match out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let partial = format!(".{name}.partial-");
        Self { name, parent, partial }
    }
}

/// A build's hidden work directory beside its output.
pub(crate) struct Staging {
    pub(crate) work: WorkDir,
    pub(crate) out_name: String,
    pub(crate) parent: PathBuf,
}

/// Refuses an output path that holds something other than a vmkit image, sweeps what killed builds left, and
/// creates the hidden work directory beside `out`.
pub(crate) fn stage(out: &Path, name: &str) -> Result<Staging, BuildError> {
    if out.exists() && (!out.is_dir() || Manifest::load(out).is_err()) {
        let empty = std::fs::read_dir(out).map(|mut d| d.next().is_none()).unwrap_or(false);
        if !empty {
            return Err(BuildError::OutputInTheWay { path: out.to_owned() });
        }
    }
    let OutputPlace { name: out_name, parent, partial } = OutputPlace::of(out, name);
    WorkDir::sweep_stale(&parent, &partial);
    sweep_old_outputs(&parent, &format!(".{out_name}.old-"));
    let work = WorkDir::create(&parent, &partial)?;
    Ok(Staging { work, out_name, parent })
}

/// How to log in once `run` is running.
pub fn login_hint(out: &Path, port: u16, user: &str, generated_key: bool, key: &Path) -> String {
    let key = if generated_key { out.join(files::KEY) } else { key.to_owned() };
    format!("ssh -i {} -p {port} {user}@127.0.0.1", crate::guest::shell_quote(&key.display().to_string()))
}

async fn base_image(recipe: &Recipe, opts: &BuildOptions, say: &Say) -> Result<Base, BuildError> {
    match &recipe.source {
        Source::Debian(source) => {
            let base = ensure_base(&opts.cache_root, source, &[], &|m: &str| say.line(m)).await?;
            say.line(&format!(
                "base: Debian {} with {} packages{}",
                base.info.suite,
                base.info.installed.len(),
                if base.cached { " (cached)" } else { "" }
            ));
            let info = image_info(&base.disk).await?;
            Ok(Base {
                disk: base.disk,
                format: info.format,
                virtual_size: info.virtual_size,
                kernel: Some((base.kernel, base.initrd)),
                tools: vec![("debootstrap".to_owned(), base.info.debootstrap.clone())],
                record: BaseRecord::Debian {
                    suite: base.info.suite,
                    mirror: base.info.mirror,
                    key: base.info.key,
                    kernel_release: base.info.kernel_release,
                    debootstrap: base.info.debootstrap,
                    packages: base.info.installed.into_iter().collect(),
                },
            })
        }
        Source::Windows(_) => Err(BuildError::WindowsRecipe("the Linux base image")),
        Source::Macos(_) => Err(BuildError::MacosNotBuilt),
        Source::CloudImage { url, sha256 } => {
            let digest: fetch::Sha256 = sha256.parse()?;
            let source = fetch::Source::new(url, digest)?;
            let fetcher = fetch::Fetcher::new(fetch::Cache::at(&opts.cache_root))?
                .progress(opts.progress)
                .lines(say.fetch_lines());
            let fetched = fetcher.fetch(&source).await?;
            say.line(&format!(
                "base: {} ({})",
                source.name(),
                if fetched.from_cache { "cached" } else { "downloaded" }
            ));
            let info = image_info(&fetched.path).await?;
            Ok(Base {
                disk: fetched.path,
                format: info.format.clone(),
                virtual_size: info.virtual_size,
                kernel: None,
                tools: vec![],
                record: BaseRecord::CloudImage { url: url.clone(), sha256: sha256.clone(), format: info.format },
            })
        }
    }
}

/// Starts the machine on a free SSH port (another one if QEMU finds it taken); returns QEMU and the port.
async fn start_machine(
    machine: &mut ImageMachine,
    sockets: &Path,
    serial_log: &Path,
    work: &Path,
) -> Result<(Qemu, u16), BuildError> {
    start_on_free_ports(work, || {
        machine.ssh_port = free_local_port()?;
        let cmd = machine.supervised(
            sockets.join("qmp.sock"),
            sockets.join("serial.sock"),
            serial_log.to_owned(),
            work.join(QEMU_PIDFILE),
        );
        Ok((cmd, machine.ssh_port))
    })
    .await
}

/// How many times a start is tried when QEMU finds a host port taken between choosing it and binding it.
const PORT_ATTEMPTS: u32 = 3;

/// Starts QEMU from the command `attempt` makes — with freshly chosen host ports, and whatever else one try needs
/// (`T`: the ports, a TPM emulator) — and again when QEMU finds a port taken meanwhile, [`PORT_ATTEMPTS`] times in
/// all. The image machines' form of [`qemu::start_with_port_retry`]: their ports are chosen on the machine model
/// that renders the command, not on the command.
pub(crate) async fn start_on_free_ports<T>(
    work: &Path,
    mut attempt: impl FnMut() -> Result<(QemuCommand, T), BuildError>,
) -> Result<(Qemu, T), BuildError> {
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let (cmd, made) = attempt()?;
        match Qemu::start_with(&cmd, StartOptions::default()).await {
            Ok(q) => return Ok((q, made)),
            Err(e) if e.is_addr_in_use() => last = Some(e),
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.map_or_else(
        || BuildError::Io { op: "starting QEMU", path: work.to_owned(), source: std::io::Error::other("no attempt") },
        Into::into,
    ))
}

/// A free TCP port on 127.0.0.1, for a host forward.
pub(crate) fn free_local_port() -> Result<u16, BuildError> {
    qemu::free_tcp_port(IpAddr::V4(Ipv4Addr::LOCALHOST)).map_err(io("finding a free port on", Path::new("127.0.0.1")))
}

/// A free VNC display on 127.0.0.1.
pub(crate) fn free_local_vnc_display() -> Result<u16, BuildError> {
    qemu::free_vnc_display(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .map_err(io("finding a free VNC display on", Path::new("127.0.0.1")))
}

/// Races waits on the guest against QEMU's exit.
pub(crate) struct Watch<'a> {
    pub(crate) qemu: &'a Qemu,
    pub(crate) log: &'a Path,
}

impl Watch<'_> {
    /// `fut`'s output, or [`BuildError::QemuDied`] the moment QEMU exits.
    pub(crate) async fn run<T>(&self, step: &str, fut: impl Future<Output = T>) -> Result<T, BuildError> {
        tokio::select! {
            exit = self.qemu.exited() => Err(BuildError::QemuDied {
                step: step.to_owned(),
                exit: exit.to_string(),
                log: self.log.to_owned(),
                tail: serial_tail(self.log),
            }),
            value = fut => Ok(value),
        }
    }

    /// Like [`Watch::run`] for a guest command: its error becomes [`BuildError::Guest`].
    pub(crate) async fn step<T>(
        &self,
        step: &str,
        fut: impl Future<Output = Result<T, GuestError>>,
    ) -> Result<T, BuildError> {
        self.run(step, fut).await?.map_err(|source| BuildError::Guest {
            step: step.to_owned(),
            source: Box::new(source),
            log: self.log.to_owned(),
            tail: serial_tail(self.log),
        })
    }
}

/// The last 25 lines of the serial log.
pub fn serial_tail(log: &Path) -> String {
    let text = std::fs::read(log).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines.get(lines.len().saturating_sub(25)..).unwrap_or_default().join("\n")
}

/// Writes `dir/manifest.json` (mode 0644): where the Linux and the Windows build both finish.
pub(crate) fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), BuildError> {
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| BuildError::Io {
        op: "writing the manifest of",
        path: dir.to_owned(),
        source: std::io::Error::other(e),
    })?;
    write_mode(&dir.join(MANIFEST), &json, 0o644)
}

pub(crate) fn write_mode(path: &Path, data: &[u8], mode: u32) -> Result<(), BuildError> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(io("writing", path))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(io("setting the mode of", path))?;
    file.write_all(data).map_err(io("writing", path))?;
    file.sync_all().map_err(io("syncing", path))
}

/// SHA-256 and size of every file in the work directory and its subdirectories (the TPM state; hidden files such
/// as the lock file aside), synced to disk on the way. Names are relative, `/`-separated.
pub(crate) async fn hash_outputs(dir: &Path) -> Result<std::collections::BTreeMap<String, OutputRecord>, BuildError> {
    fn walk(
        dir: &Path,
        prefix: &str,
        outputs: &mut std::collections::BTreeMap<String, OutputRecord>,
    ) -> Result<(), BuildError> {
        for entry in std::fs::read_dir(dir).map_err(io("reading", dir))? {
            let entry = entry.map_err(io("reading", dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let kind = entry.file_type().map_err(io("reading", &path))?;
            if name.starts_with('.') || (prefix.is_empty() && name == MANIFEST) {
                continue;
            }
            if kind.is_dir() {
                walk(&path, &format!("{prefix}{name}/"), outputs)?;
            } else if kind.is_file() {
                std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(io("syncing", &path))?;
                outputs.insert(format!("{prefix}{name}"), record(&path)?);
            }
        }
        Ok(())
    }
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut outputs = std::collections::BTreeMap::new();
        walk(&dir, "", &mut outputs)?;
        Ok(outputs)
    })
    .await
    .map_err(|e| BuildError::Io {
        op: "hashing outputs in",
        path: PathBuf::new(),
        source: std::io::Error::other(e),
    })?
}

/// Renames the finished work directory to `out`, replacing an older build of it.
pub(crate) fn publish(work: WorkDir, out: &Path, out_name: &str, parent: &Path) -> Result<(), BuildError> {
    let old = if out.exists() {
        let old = parent.join(format!(".{out_name}.old-{}", std::process::id()));
        std::fs::rename(out, &old).map_err(io("moving the previous build aside:", out))?;
        Some(old)
    } else {
        None
    };
    if let Err(e) = std::fs::rename(work.path(), out) {
        if let Some(old) = &old {
            let _ = std::fs::rename(old, out);
        }
        return Err(io("renaming the finished build to", out)(e));
    }
    work.keep(out);
    if let Some(old) = old {
        remove_work_dir(&old)?;
    }
    std::fs::File::open(parent).and_then(|d| d.sync_all()).map_err(io("syncing", parent))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(text: &str) -> Recipe {
        Recipe::parse(text, Path::new("r.toml")).unwrap()
    }

    const BASE: &str = "name = \"deb\"\nusername = \"agent\"\nsource = { debian = { suite = \"bookworm\" } }\n";

    #[test]
    fn input_digest_changes_with_any_input_and_only_then() {
        let (_, a) = inputs_of(&recipe(BASE)).unwrap();
        let (_, same) = inputs_of(&recipe(&format!("# a comment\n{BASE}"))).unwrap();
        assert_eq!(a, same, "formatting is not an input");
        let (_, b) = inputs_of(&recipe(&format!("{BASE}memory = 1024\n"))).unwrap();
        assert_ne!(a, b);
        let (_, c) = inputs_of(&recipe(&format!("{BASE}[provision]\ncommands = [\"true\"]\n"))).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn cloud_config_has_the_user_key_and_files() {
        let r = recipe(&format!(
            "{BASE}installNix = true\n[provision]\npackages = [\"htop\"]\nfiles = [{{ path = \"/etc/x\", content = \"y\" }}]\n"
        ));
        let key = KeyPair::generate("t").unwrap();
        let c = cloud_config(&r, &key);
        assert_eq!(c.users[0].name, "agent");
        assert_eq!(c.users[0].ssh_authorized_keys, vec![key.public_openssh()]);
        assert_eq!(c.packages, vec!["htop".to_owned(), NIX_PACKAGE.to_owned()]);
        assert_eq!(c.write_files[0].permissions, Some(0o644));
        assert!(c.render().is_ok());
    }

    #[test]
    fn up_to_date_needs_matching_inputs_and_present_outputs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("disk.qcow2"), b"1234").unwrap();
        let manifest = serde_json::json!({
            "format": MANIFEST_FORMAT, "vmkit": "x", "name": "deb", "inputsSha256": "abc", "inputs": {},
            "base": {"kind": "cloudImage", "url": "u", "sha256": "s", "format": "qcow2"},
            "machine": {"accel": "tcg", "accelReason": "", "memory": 1, "cpus": 1, "disk": "disk.qcow2", "seed": "seed.iso",
                        "kernel": null, "initrd": null, "diskSize": 1},
            "ssh": {"user": "a", "port": 1, "privateKey": null, "publicKey": "k", "fingerprint": "f"},
            "hostname": "h", "tools": {}, "outputs": {"disk.qcow2": {"sha256": "00", "size": 4}},
            "shutdown": "guest", "timings": {}, "builtAtUnix": 0
        });
        std::fs::write(dir.path().join(MANIFEST), manifest.to_string()).unwrap();
        assert!(up_to_date(dir.path(), "abc").is_some());
        assert!(up_to_date(dir.path(), "abd").is_none());
        std::fs::write(dir.path().join("disk.qcow2"), b"12345").unwrap();
        assert!(up_to_date(dir.path(), "abc").is_none(), "a changed size is not up to date");
    }
}
