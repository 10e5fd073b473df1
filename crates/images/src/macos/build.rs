//! `vmkit image build` for macOS recipes: the installer driven by vmkit's automation engine, then the same kind
//! of image directory as the Linux and Windows builds — or nothing at all.
//!
//! Phases (each failure names its phase):
//!
//! 1. **prepare** — the host pre-flight first (KVM, CPU features, memory; TCG only with `--allow-tcg`), then
//!    everything `vmkit image prepare` makes ([`super::prepare`]: the verified OpenCore release and recovery
//!    image, the Mac identity, the boot disk, the installer disk, VARS) and the empty target disk, plus the SSH
//!    key pair, all in the build's hidden work directory. The install script is loaded and its variables bound
//!    before anything boots, so a broken script costs nothing.
//! 2. **boot** — QEMU with the OSX-KVM-style machine ([`super::machine`]) and the installer attached: VNC, QMP
//!    and SSH on 127.0.0.1 only (VNC with a random password set over QMP), the serial port logged.
//! 3. **install** — the install script ([`super::scripts`]: the recipe's `automate`, or the one vmkit ships for
//!    the version) run against the VNC screen, with the account name, its password (a secret variable: never
//!    printed) and the generated public key as its variables; the script ends with Remote Login on and the key
//!    installed. Then the build waits until SSH lets the account in with the generated key, all within
//!    `maxInstallTime`.
//! 4. **provision** — each `[provision] commands` line as root (`sudo -n sh -c`, like Linux builds; the script
//!    gave the account password-less `sudo`); the first failure fails the build.
//! 5. **shutdown** — `shutdown -h now` over SSH and wait for QEMU to exit; else the ACPI power button; a guest
//!    that obeys neither fails the build.
//! 6. **compact** — the disk written as a standalone qcow2 without unused clusters.
//! 7. **finish** — the install-only files dropped (installer disk, install script, `prepared.json`), `run` written
//!    (the machine without the installer; the VM's changes, its VARS and its copy of the boot disk in a state
//!    directory beside the image), `manifest.json` with the Mac identity and the SHA-256 of every file; the work
//!    directory renamed into place.
//!
//! The inputs' digest (the recipe, OpenCore's and the recovery image's identity, the script and the password as
//! digests) decides whether anything is done. A rebuild keeps the Mac identity of the image it replaces.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cloudinit::KeyPair;
use qemu::{Qemu, RunScript, StopPlan};
use serde::{Deserialize, Serialize};

use super::machine::MacMachine;
use super::prepare::{self, PrepareOptions, RecoveryRecord, names};
use super::scripts;
use super::smbios::MacIdentity;
use super::source::MacosSource;
use crate::build::{
    BuildError, BuildOptions, Outcome, Say, Staging, Watch, files, free_local_port, free_local_vnc_display,
    hash_outputs, login_hint, publish, stage, start_on_free_ports, up_to_date, write_mode,
};
use crate::fsutil::{QEMU_PIDFILE, WorkDir};
use crate::guest::GuestSsh;
use crate::manifest::{BaseRecord, MANIFEST, MANIFEST_FORMAT, MachineRecord, Manifest, SshRecord};
use crate::recipe::Recipe;
use crate::tools::{image_info, version};
use crate::windows::MediaSource;
use crate::windows::build::{compact_phase, in_phase, minutes, shut_down_by, vnc_secret};
use crate::windows::prepare::MediaRecord;

/// Bump when the same recipe would build a different macOS image.
const MACOS_BUILD_REVISION: u32 = 1;

/// What `vmkit image build` takes from the command line for macOS recipes.
#[derive(Debug, Clone, Default)]
pub struct MacosOverrides {
    /// A recovery image on disk (`--recovery`).
    pub recovery: Option<PathBuf>,
    /// An OpenCore release on disk (`--opencore`).
    pub opencore: Option<PathBuf>,
    /// Run under TCG when KVM is not usable (`--allow-tcg`).
    pub allow_tcg: bool,
}

/// What a macOS image's manifest records as its base: where it came from, which Mac it is, and what it boots
/// with besides its disk (paths relative to the image directory).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MacosRecord {
    /// `ventura`, `sonoma`, `sequoia` or `tahoe`.
    pub version: String,
    /// The OpenCore release.
    pub opencore: MediaRecord,
    /// The recovery image installed from.
    pub recovery: RecoveryRecord,
    /// The install script (its name and SHA-256).
    pub script: ScriptRecord,
    /// The boot arguments in NVRAM.
    pub boot_args: String,
    /// The kext releases on the boot disk and the bundles taken from each.
    #[serde(default)]
    pub kexts: Vec<super::kexts::KextRecord>,
    /// The Mac the guest presents.
    pub identity: MacIdentity,
    /// OVMF's code (a host file of Debian's `ovmf`).
    pub firmware_code: String,
    /// The image's own UEFI variable store.
    pub vars: String,
    /// OpenCore's boot disk.
    pub boot_disk: String,
}

/// The install script a macOS image was built with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptRecord {
    /// The recipe's file, or the shipped script's name in vmkit's repository.
    pub name: String,
    /// SHA-256 of its text.
    pub sha256: String,
}

/// The install script's text and name.
fn script_text(m: &MacosSource) -> Result<(String, String), BuildError> {
    match &m.automate {
        Some(path) => {
            let bytes = userfile::read(path, userfile::Limit::Config).map_err(|e| BuildError::Io {
                op: "reading",
                path: path.clone(),
                source: e.into_io(),
            })?;
            Ok((path.display().to_string(), String::from_utf8_lossy(&bytes).into_owned()))
        }
        None => {
            let (name, text) = scripts::shipped(m.version);
            Ok((name.to_owned(), text.to_owned()))
        }
    }
}

/// The inputs as recorded in the manifest, and their digest (see the module documentation).
pub fn inputs_of(
    recipe: &Recipe,
    m: &MacosSource,
    opts: &BuildOptions,
) -> Result<(serde_json::Value, String), BuildError> {
    let (mut value, _) = crate::build::inputs_of(recipe)?;
    let identity = |what: &str, over: Option<&Path>, source: Option<&MediaSource>| {
        // Neither given nor pinned: fetched from Apple, where the version decides and the chunklist verifies.
        crate::windows::build::media_identity(what, over, source)
            .unwrap_or_else(|| serde_json::json!({ "what": what, "from": "Apple's recovery server" }))
    };
    let recovery_source = m.recovery.clone().map(MediaSource::Path);
    let media = serde_json::json!({
        "opencore": identity("OpenCore release", opts.macos.opencore.as_deref(), Some(&m.opencore)),
        "recovery": identity("recovery image", opts.macos.recovery.as_deref(), recovery_source.as_ref()),
        "allowTcg": opts.macos.allow_tcg,
    });
    if let Some(obj) = value.as_object_mut() {
        obj.insert("media".to_owned(), media);
    }
    let digest_of = |path: &Path| store::sha256_file_hex(path).unwrap_or_default();
    let (_, script) = script_text(m)?;
    let digest_input = serde_json::json!({
        "vmkit": env!("CARGO_PKG_VERSION"),
        "revision": MACOS_BUILD_REVISION,
        "recipe": value,
        // The password only as a digest, and only inside the inputs' digest.
        "password": m.password_file.as_deref().map(digest_of),
        "script": fetch::Sha256::of_bytes(script.as_bytes()).to_hex(),
    });
    let digest = fetch::Sha256::of_bytes(digest_input.to_string().as_bytes()).to_hex();
    Ok((value, digest))
}

/// Builds the macOS recipe `recipe` into `opts.out` (or reports it up to date).
pub async fn build(recipe: &Recipe, m: &MacosSource, opts: &BuildOptions) -> Result<Outcome, BuildError> {
    let say = Say::with_sink(&recipe.name, opts.quiet, opts.sink.clone());
    let (inputs, inputs_sha256) = inputs_of(recipe, m, opts)?;
    if let Some(manifest) = up_to_date(&opts.out, &inputs_sha256) {
        return Ok(Outcome::UpToDate(Box::new(manifest)));
    }
    // The password and the script are checked before anything is made.
    let Some(password_file) = &m.password_file else {
        return Err(BuildError::Script(format!(
            "recipe {}: [source.macos] passwordFile is needed to build: the install script types the account's \
             password in Setup Assistant (write it on one line into a file; it is never put in the recipe)",
            recipe.name
        )));
    };
    let password = crate::windows::answer::Password::read(password_file)?;
    let (script_name, script_body) = script_text(m)?;
    let script = scripts::load(m.automate.as_ref(), m.version).map_err(|d| BuildError::Script(d.join("\n")))?;
    let kept = match Manifest::load(&opts.out) {
        Ok(Manifest { base: BaseRecord::Macos(old), .. }) => Some(old.identity),
        _ => None,
    };
    let prepare_opts = PrepareOptions {
        out: opts.out.clone(),
        cache_root: opts.cache_root.clone(),
        replace: true,
        recovery: opts.macos.recovery.clone(),
        opencore: opts.macos.opencore.clone(),
        allow_tcg: opts.macos.allow_tcg,
        progress: opts.progress,
        quiet: opts.quiet,
        sink: opts.sink.clone(),
    };
    let mut timings = std::collections::BTreeMap::new();

    // 1. prepare: the host first, so a host that cannot run the result gets nothing.
    let t = Instant::now();
    say.line("prepare: host pre-flight (KVM, CPU features, memory)");
    let host = prepare::host_check(recipe, m, &prepare_opts, &say).await.map_err(in_phase("prepare"))?;
    let Staging { work, out_name, parent } = stage(&opts.out, &recipe.name).map_err(in_phase("prepare"))?;
    let dir = work.path().to_owned();
    say.line("prepare: OpenCore, Mac identity, boot disk, installer disk, firmware variables, target disk, key pair");
    let made = prepare::prepare_into(recipe, m, &dir, &prepare_opts, host.clone(), kept, &say)
        .await
        .map_err(in_phase("prepare"))?;
    let (keypair, key_path, generated_key) = match &recipe.ssh_key {
        Some(path) => (KeyPair::load(path).map_err(|e| in_phase("prepare")(e.into()))?, path.clone(), None),
        None => {
            let pair =
                KeyPair::generate(&format!("vmkit@{}", recipe.name)).map_err(|e| in_phase("prepare")(e.into()))?;
            let written = pair.write(&dir, files::KEY).map_err(|e| in_phase("prepare")(e.into()))?;
            (pair, written.private, Some(files::KEY.to_owned()))
        }
    };
    // The key is typed into a shell inside single quotes by the shipped scripts: printable ASCII without `'`.
    let public = keypair.public_openssh();
    if !public.chars().all(|c| (c.is_ascii_graphic() && c != '\'') || c == ' ') {
        return Err(in_phase("prepare")(BuildError::Script(format!(
            "the SSH public key of {}: its comment has characters an install script cannot type into a shell \
             (printable ASCII without `'` only)",
            key_path.display()
        ))));
    }
    let values = scripts::values(&script, &recipe.username, password.expose(), &public);
    let script = script.bind(&values).map_err(|e| in_phase("prepare")(BuildError::Script(e.to_string())))?;
    timings.insert("prepare".to_owned(), t.elapsed().as_secs_f64());
    let identity = made.prepared.identity.clone();

    // 2. boot
    let t = Instant::now();
    say.line(&format!("boot: the installer under {} ({})", host.accel, host.reason));
    WorkDir::sweep_stale(&std::env::temp_dir(), "vmkit-build-sockets-");
    let sockets =
        WorkDir::create(&std::env::temp_dir(), "vmkit-build-sockets-").map_err(|e| in_phase("boot")(e.into()))?;
    let serial_log = dir.join(files::SERIAL);
    let mut install = prepare::machine_in(&dir, recipe, m, &identity, host.accel, true);
    let (qemu, port, vnc_port) =
        start(&mut install, sockets.path(), &serial_log, &dir).await.map_err(in_phase("boot"))?;
    let vnc_password = vnc_secret();
    let vnc_file = sockets.path().join("vnc-password");
    let set = async {
        write_mode(&vnc_file, vnc_password.expose().as_bytes(), 0o600)?;
        qemu.qmp()?.change_vnc_password(&vnc_password).await.map_err(|e| BuildError::Io {
            op: "setting the VNC password over QMP for",
            path: dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })
    };
    set.await.map_err(in_phase("boot"))?;
    let ssh = GuestSsh::local(port, &recipe.username, key_path.clone());
    let guard = Watch { qemu: &qemu, log: &serial_log };
    timings.insert("boot".to_owned(), t.elapsed().as_secs_f64());

    // 3. install
    let t = Instant::now();
    let limit = m.max_install_time();
    say.line(&format!(
        "install: running {script_name} against the screen (to watch: VNC 127.0.0.1:{vnc_port}, password in {})",
        vnc_file.display()
    ));
    let automation = async {
        let mut run_opts = automate::runner::RunOptions::new(format!("127.0.0.1:{vnc_port}"));
        run_opts.vnc_password = Some(vnc_password.clone());
        run_opts.ssh_host = Some("127.0.0.1".to_owned());
        run_opts.ssh_port = Some(port);
        let mut progress = |line: &str| say.line(&format!("install: automate: {line}"));
        let result = automate::runner::run(&script, &run_opts, &mut progress).await;
        if result.outcome == automate::result::Outcome::Passed {
            Ok(())
        } else {
            Err(BuildError::Automation {
                script: PathBuf::from(&script_name),
                detail: result.error.unwrap_or_else(|| result.outcome.as_str().to_owned()),
            })
        }
    };
    let ran = tokio::time::timeout(limit, guard.run("running the install script", automation)).await;
    match ran {
        Err(_) => {
            return Err(in_phase("install")(BuildError::Io {
                op: "running the install script (maxInstallTime) on",
                path: PathBuf::from(format!("127.0.0.1:{vnc_port}")),
                source: std::io::Error::other(format!("not done within {}", minutes(limit))),
            }));
        }
        Ok(ran) => ran.map_err(in_phase("install"))?.map_err(in_phase("install"))?,
    }
    say.line("install: the install script passed; waiting for SSH with the generated key");
    let left = limit.saturating_sub(t.elapsed()).max(Duration::from_secs(60));
    guard
        .step("waiting for SSH with the generated key", ssh.wait_ready(left, Duration::from_secs(2)))
        .await
        .map_err(in_phase("install"))?;
    timings.insert("install".to_owned(), t.elapsed().as_secs_f64());
    say.line(&format!("install: done; SSH answers on 127.0.0.1:{port} after {}", minutes(t.elapsed())));

    // 4. provision
    let t = Instant::now();
    let commands = &recipe.provision.commands;
    for (i, line) in commands.iter().enumerate() {
        say.line(&format!("provision {}/{}: {line}", i + 1, commands.len()));
        guard
            .step(&format!("provisioning command {} ({line})", i + 1), ssh.run_as_root(line, opts.command_timeout))
            .await
            .map_err(in_phase("provision"))?;
    }
    let product = guard
        .step("reading the guest's version (sw_vers)", ssh.run("sw_vers -productVersion", Duration::from_secs(60), 2))
        .await
        .map_err(in_phase("provision"))?;
    timings.insert("provision".to_owned(), t.elapsed().as_secs_f64());

    // 5. shutdown
    let t = Instant::now();
    say.line("shutdown: shutdown -h now over SSH");
    let poweroff = {
        let ssh = ssh.clone();
        async move {
            let _ = ssh.run_as_root("shutdown -h now", Duration::from_secs(60)).await;
        }
    };
    let plan = StopPlan { guest: None, powerdown: Some(Duration::from_secs(300)), quit: None }
        .with_guest(poweroff, Duration::from_secs(600));
    let stopped = qemu.stop(plan).await.map_err(|e| in_phase("shutdown")(e.into()))?;
    drop(qemu);
    let shutdown = shut_down_by(stopped.by)?;
    say.line(&format!("shutdown: the guest powered off ({shutdown})"));
    timings.insert("shutdown".to_owned(), t.elapsed().as_secs_f64());
    let _ = std::fs::remove_file(dir.join(QEMU_PIDFILE));
    drop(sockets);

    // 6. compact
    let t = Instant::now();
    compact_phase(&dir, &say).await?;
    timings.insert("compact".to_owned(), t.elapsed().as_secs_f64());

    // 7. finish
    let finished = Finished {
        made: made.prepared,
        keypair,
        key_path,
        generated_key,
        script: ScriptRecord { name: script_name, sha256: fetch::Sha256::of_bytes(script_body.as_bytes()).to_hex() },
        accel: host,
        product: product.trim().to_owned(),
        shutdown,
    };
    finish(recipe, m, opts, &say, finished, inputs, inputs_sha256, timings, work, &out_name, &parent)
        .await
        .map_err(in_phase("finish"))
}

/// Starts QEMU on a free SSH port and VNC display (others if taken); returns QEMU, the SSH port and the VNC port.
async fn start(
    m: &mut MacMachine,
    sockets: &Path,
    serial_log: &Path,
    dir: &Path,
) -> Result<(Qemu, u16, u16), BuildError> {
    let (qemu, display) = start_on_free_ports(dir, || {
        m.ssh_port = free_local_port()?;
        let display = free_local_vnc_display()?;
        let mut vnc = qemu::Vnc::localhost(display);
        vnc.password = true;
        Ok((supervised(m, sockets, serial_log, dir, vnc), display))
    })
    .await?;
    Ok((qemu, m.ssh_port, 5900 + display))
}

/// The machine with QMP, the serial port logged, a pidfile and VNC: what the build and `vmkit image test` run.
pub(crate) fn supervised(
    m: &MacMachine,
    sockets: &Path,
    serial_log: &Path,
    pid_dir: &Path,
    vnc: qemu::Vnc,
) -> qemu::QemuCommand {
    let mut cmd = m.command();
    cmd.qmp = Some(sockets.join("qmp.sock"));
    cmd.serial_socket(sockets.join("serial.sock"), serial_log.to_owned());
    cmd.pidfile = Some(pid_dir.join(QEMU_PIDFILE));
    cmd.vnc = Some(vnc);
    cmd
}

/// What the phases before `finish` found out.
struct Finished {
    made: prepare::Prepared,
    keypair: KeyPair,
    key_path: PathBuf,
    generated_key: Option<String>,
    script: ScriptRecord,
    accel: prepare::HostVerdict,
    product: String,
    shutdown: &'static str,
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    recipe: &Recipe,
    m: &MacosSource,
    opts: &BuildOptions,
    say: &Say,
    f: Finished,
    inputs: serde_json::Value,
    inputs_sha256: String,
    mut timings: std::collections::BTreeMap<String, f64>,
    work: WorkDir,
    out_name: &str,
    parent: &Path,
) -> Result<Outcome, BuildError> {
    let dir = work.path().to_owned();
    for name in [names::INSTALLER, names::INSTALL, names::PREPARED] {
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(BuildError::Io { op: "removing", path: dir.join(name), source }),
        }
    }
    // The run script boots an overlay in a state directory beside the image, with the state's own copies of the
    // firmware variables and the boot disk (qemu::script): a VM's changes never reach the image as built.
    let built_at_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let state = qemu::VmState {
        build: format!("{}-{built_at_unix}", &inputs_sha256[..inputs_sha256.len().min(12)]),
        pinned: vec![PathBuf::from(files::DISK)],
        disk: PathBuf::from(files::DISK),
        copied: vec![PathBuf::from(names::VARS), PathBuf::from(names::OPENCORE)],
    };
    let mut relative = prepare::machine_in(Path::new(""), recipe, m, &f.made.identity, f.accel.accel, false);
    relative.system = PathBuf::from(qemu::VmState::OVERLAY);
    let login = login_hint(&opts.out, recipe.ssh_port, &recipe.username, f.generated_key.is_some(), &f.key_path);
    let script = RunScript {
        comments: vec![
            format!(
                "{} — macOS {} built by vmkit {} ({}).",
                recipe.name,
                m.version,
                env!("CARGO_PKG_VERSION"),
                f.accel.accel
            ),
            "Boots OpenCore and the installed system; extra arguments go to QEMU (e.g. -vnc 127.0.0.1:1).".to_owned(),
            format!("Log in from another terminal: {login}"),
        ],
        cd_to_script_dir: true,
        pass_args: true,
        before: Vec::new(),
        state: Some(state),
    }
    .render(&relative.command())?;
    write_mode(&dir.join(files::RUN), script.as_bytes(), 0o755)?;

    let mut tools = std::collections::BTreeMap::new();
    tools.insert("qemu".to_owned(), version("qemu-system-x86_64", &["--version"], "qemu-system-x86").await?);
    tools.insert("qemu-img".to_owned(), version("qemu-img", &["--version"], "qemu-utils").await?);
    tools.insert("guest macOS".to_owned(), f.product.clone());
    let outputs = hash_outputs(&dir).await?;
    let disk_size = image_info(&dir.join(files::DISK)).await?.virtual_size;
    timings.insert("total".to_owned(), say.elapsed());
    let p = f.made;
    let record = MacosRecord {
        version: p.version.clone(),
        opencore: p.opencore.clone(),
        recovery: p.recovery.clone(),
        script: f.script,
        boot_args: p.boot_args.clone(),
        kexts: p.kexts.clone(),
        identity: p.identity.clone(),
        firmware_code: relative.ovmf_code.display().to_string(),
        vars: names::VARS.to_owned(),
        boot_disk: names::OPENCORE.to_owned(),
    };
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        vmkit: env!("CARGO_PKG_VERSION").to_owned(),
        name: recipe.name.clone(),
        inputs_sha256,
        inputs,
        base: BaseRecord::Macos(Box::new(record)),
        machine: MachineRecord {
            accel: f.accel.accel.to_string(),
            accel_reason: f.accel.reason.clone(),
            memory: recipe.memory,
            cpus: recipe.cpus,
            disk: files::DISK.to_owned(),
            seed: None,
            windows: None,
            kernel: None,
            initrd: None,
            disk_size,
        },
        ssh: SshRecord {
            user: recipe.username.clone(),
            port: recipe.ssh_port,
            private_key: f.generated_key.clone(),
            public_key: f.keypair.public_openssh(),
            fingerprint: f.keypair.fingerprint(),
        },
        hostname: recipe.hostname.clone(),
        tools,
        outputs,
        shutdown: f.shutdown.to_owned(),
        timings,
        built_at_unix,
        build_identity: None,
    };
    let json = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
    write_mode(&dir.join(MANIFEST), &json, 0o644)?;
    publish(work, &opts.out, out_name, parent)?;
    say.line(&format!("built {} in {}", opts.out.display(), minutes(Duration::from_secs_f64(say.elapsed()))));
    Ok(Outcome::Built(Box::new(manifest)))
}
