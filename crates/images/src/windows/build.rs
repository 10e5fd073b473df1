//! `vmkit image build` for Windows recipes: Setup unattended, then the same kind of image directory as a Linux
//! build — or nothing at all.
//!
//! Phases (each failure names its phase):
//!
//! 1. **prepare** — everything `vmkit image prepare` makes (verified media, key pair, answer file and media, VARS
//!    copy, TPM directory, empty disk), written into the build's hidden work directory.
//! 2. **boot** — swtpm started and supervised (its state in the work directory, its socket in a short directory
//!    under /tmp), QEMU with the install machine: VNC, QMP and SSH on 127.0.0.1 only, the serial port logged.
//! 3. **setup** — the DVD's "Press any key" answered (serial log + QMP Enter); the recipe's automation script run
//!    against the VNC screen while Setup runs; then wait until SSH lets the administrator in with the generated
//!    key and reaches PowerShell, within `maxInstallTime`, reporting every [`BuildOptions::progress_every`].
//! 4. **provision** — each `[provision] commands` line as PowerShell `-EncodedCommand` (see
//!    [`crate::windows::guest`]), the first failure fails the build; then the volume is trimmed.
//! 5. **shutdown** — `Stop-Computer` over SSH and wait for QEMU to exit; else the ACPI power button over QMP;
//!    a guest that obeys neither fails the build (its NTFS may be inconsistent).
//! 6. **compact** — the disk written as a standalone qcow2 without unused clusters.
//! 7. **finish** — the install-only files dropped (answer file and media: they hold the password; the install
//!    script), `run` written (swtpm + QEMU, paths relative to it), `manifest.json` with the SHA-256 of every file,
//!    the TPM state included; the work directory renamed into place.
//!
//! The same rules as Linux builds: the inputs' digest decides whether anything is done (it covers the recipe, the
//! media's identity — path, size and modification time of a local ISO, the SHA-256 of a download —, the
//! automation script and the password), and the output appears complete or not at all.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use qemu::{Qemu, RunScript, StopPlan, StopStep, Swtpm, SwtpmCommand};
use userfile::Secret;

use crate::build::{
    BuildError, BuildOptions, Outcome, Say, Staging, Watch, files, free_local_port, free_local_vnc_display,
    hash_outputs, login_hint, publish, stage, start_on_free_ports, up_to_date, write_mode,
};
use crate::fsutil::{QEMU_PIDFILE, WorkDir};
use crate::guest::GuestSsh;
use crate::manifest::{BaseRecord, MANIFEST_FORMAT, MachineRecord, Manifest, SshRecord, WindowsMachineRecord};
use crate::recipe::Recipe;
use crate::tools::{compact, image_info, version};
use crate::windows::guest as ps;
use crate::windows::machine::{self, InstallMedia, WindowsMachine};
use crate::windows::prepare::{self, PrepareOptions, names};
use crate::windows::{MediaSource, WindowsSource};

/// Bump when the same recipe would build a different Windows image.
const WINDOWS_BUILD_REVISION: u32 = 1;

/// The inputs as recorded in the manifest, and their digest (see the module documentation).
pub fn inputs_of(
    recipe: &Recipe,
    w: &WindowsSource,
    opts: &BuildOptions,
) -> Result<(serde_json::Value, String), BuildError> {
    let (mut value, _) = crate::build::inputs_of(recipe)?;
    let identity = |what: &str, over: Option<&Path>, source: Option<&MediaSource>| {
        media_identity(what, over, source).unwrap_or(serde_json::Value::Null)
    };
    let media = serde_json::json!({
        "iso": identity("install ISO", opts.media.iso.as_deref(), w.iso.as_ref()),
        "virtio": identity("VirtIO media", opts.media.virtio.as_deref(), w.virtio.as_ref()),
    });
    if let Some(obj) = value.as_object_mut() {
        obj.insert("media".to_owned(), media);
    }
    // Contents that change the image without changing the recipe's text; the password only as a digest, and only
    // inside the inputs' digest (never recorded on its own).
    let digest_of = |path: &Path| store::sha256_file_hex(path).unwrap_or_default();
    let secret_digest = digest_of(&w.password_file);
    let automate_digest = w.automate.as_deref().map(digest_of);
    let digest_input = serde_json::json!({
        "vmkit": env!("CARGO_PKG_VERSION"),
        "revision": WINDOWS_BUILD_REVISION,
        "recipe": value,
        "password": secret_digest,
        "automate": automate_digest,
    });
    let digest = fetch::Sha256::of_bytes(digest_input.to_string().as_bytes()).to_hex();
    Ok((value, digest))
}

/// How a piece of install media enters a build's inputs: a local file (`over`, the command line's, or the
/// recipe's path) by path, size and modification time; a download by URL and SHA-256. `None` when the media comes
/// from neither (the caller records what stands for it).
pub(crate) fn media_identity(
    what: &str,
    over: Option<&Path>,
    source: Option<&MediaSource>,
) -> Option<serde_json::Value> {
    let local = match (over, source) {
        (Some(path), _) => Some(path),
        (None, Some(MediaSource::Path(path))) => Some(path.as_path()),
        _ => None,
    };
    match (local, source) {
        (Some(path), _) => {
            let meta = std::fs::metadata(path).ok();
            let mtime = meta
                .as_ref()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos().to_string());
            Some(serde_json::json!({ "what": what, "path": path, "size": meta.map(|m| m.len()), "mtime": mtime }))
        }
        (None, Some(MediaSource::Download { url, sha256 })) => {
            Some(serde_json::json!({ "what": what, "url": url, "sha256": sha256 }))
        }
        _ => None,
    }
}

/// Wraps an error with the phase it happened in.
pub(crate) fn in_phase(phase: &'static str) -> impl FnOnce(BuildError) -> BuildError {
    move |e| match e {
        already @ BuildError::Phase { .. } => already,
        other => BuildError::Phase { phase, source: Box::new(other) },
    }
}

/// How the installed guest stopped, as the build's log and manifest name it; a guest that had to be killed did
/// not shut down, and its disk is not trusted.
pub(crate) fn shut_down_by(by: StopStep) -> Result<&'static str, BuildError> {
    match by {
        StopStep::Guest | StopStep::AlreadyExited => Ok("guest"),
        StopStep::Powerdown => Ok("powerdown"),
        StopStep::Quit => Ok("quit"),
        StopStep::Kill => Err(in_phase("shutdown")(BuildError::NotShutDown)),
    }
}

/// The compact phase of an installer build: the installed disk in `dir` is rewritten in place as a standalone
/// qcow2 without unused clusters.
pub(crate) async fn compact_phase(dir: &Path, say: &Say) -> Result<(), BuildError> {
    say.line("compact: writing a standalone qcow2 without unused clusters");
    let installed = dir.join("installed.qcow2");
    std::fs::rename(dir.join(files::DISK), &installed).map_err(|source| {
        in_phase("compact")(BuildError::Io { op: "renaming", path: dir.join(files::DISK), source })
    })?;
    compact(&installed, &dir.join(files::DISK), &dir.join("compact.log"))
        .await
        .map_err(|e| in_phase("compact")(e.into()))?;
    for f in [installed, dir.join("compact.log")] {
        let _ = std::fs::remove_file(f);
    }
    Ok(())
}

/// Builds the Windows recipe `recipe` into `opts.out` (or reports it up to date).
pub async fn build(recipe: &Recipe, w: &WindowsSource, opts: &BuildOptions) -> Result<Outcome, BuildError> {
    let say = Say::with_sink(&recipe.name, opts.quiet, opts.sink.clone());
    let (inputs, inputs_sha256) = inputs_of(recipe, w, opts)?;
    if let Some(manifest) = up_to_date(&opts.out, &inputs_sha256) {
        return Ok(Outcome::UpToDate(Box::new(manifest)));
    }
    // The automation script is checked before anything is made.
    let script = match &w.automate {
        Some(path) => Some((
            path.clone(),
            automate::load::load_file(path).map_err(|e| BuildError::Script(e.diagnostics().join("\n")))?,
        )),
        None => None,
    };
    let Staging { work, out_name, parent } = stage(&opts.out, &recipe.name)?;
    let dir = work.path().to_owned();
    let mut timings = std::collections::BTreeMap::new();

    // 1. prepare
    let t = Instant::now();
    say.line("prepare: media, answer file and media, firmware variables, TPM state, disk");
    let prepare_opts = PrepareOptions {
        out: opts.out.clone(),
        cache_root: opts.cache_root.clone(),
        replace: true,
        media: opts.media.clone(),
        progress: opts.progress,
        quiet: opts.quiet,
        sink: opts.sink.clone(),
    };
    let made = prepare::prepare_into(recipe, w, &dir, &prepare_opts, &say).await.map_err(in_phase("prepare"))?;
    timings.insert("prepare".to_owned(), t.elapsed().as_secs_f64());
    let accel = made.accel.clone();

    // 2. boot
    let t = Instant::now();
    say.line(&format!("boot: Setup under {} ({})", accel.accel, accel.reason));
    WorkDir::sweep_stale(&std::env::temp_dir(), "vmkit-build-sockets-");
    let sockets =
        WorkDir::create(&std::env::temp_dir(), "vmkit-build-sockets-").map_err(|e| in_phase("boot")(e.into()))?;
    let serial_log = dir.join(files::SERIAL);
    let media = InstallMedia { iso: made.iso.clone(), virtio: made.virtio.clone(), answer: PathBuf::new() };
    let mut install = prepare::machine_in(&dir, recipe, w, accel.accel, Some(media));
    let tpm_socket = sockets.path().join("swtpm.sock");
    install.tpm_socket = w.tpm.then(|| tpm_socket.clone());
    let (qemu, swtpm, port, vnc_port) =
        start(&mut install, sockets.path(), &serial_log, &dir).await.map_err(in_phase("boot"))?;
    // VNC needs a password (a random one, set over QMP so it is on no command line): other local users must not
    // type into Setup. It is written 0600 beside the build's sockets for a user who wants to watch.
    let vnc_password = vnc_secret();
    let vnc_file = sockets.path().join(VNC_PASSWORD);
    let set = async {
        write_mode(&vnc_file, vnc_password.expose().as_bytes(), 0o600)?;
        qemu.qmp()?.change_vnc_password(&vnc_password).await.map_err(|e| BuildError::Io {
            op: "setting the VNC password over QMP for",
            path: dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })
    };
    set.await.map_err(in_phase("boot"))?;
    let ssh = GuestSsh::local(port, &recipe.username, made.key_path.clone());
    let guard = Watch { qemu: &qemu, log: &serial_log };
    timings.insert("boot".to_owned(), t.elapsed().as_secs_f64());

    // 3. setup
    let t = Instant::now();
    let limit = w.max_install_time();
    say.line(&format!(
        "setup: waiting for \"{}\" on the console (to watch: VNC 127.0.0.1:{vnc_port}, password in {})",
        machine::BOOT_PROMPT,
        vnc_file.display()
    ));
    let seen =
        machine::answer_boot_prompt(&qemu, &serial_log, machine::PROMPT_KEY, machine::prompt_window(accel.accel))
            .await
            .map_err(|e| {
                in_phase("setup")(BuildError::Io {
                    op: "watching the console log",
                    path: serial_log.clone(),
                    source: std::io::Error::other(e.to_string()),
                })
            })?;
    say.line(if seen {
        "setup: the DVD's prompt was answered; Setup runs unattended"
    } else {
        "setup: no DVD prompt seen; Setup runs unattended"
    });
    let vnc = (vnc_port, &vnc_password);
    let install_wait = setup(&say, &ssh, script.as_ref(), vnc, limit.saturating_sub(t.elapsed()), opts);
    let waited = guard.run("waiting for Setup to finish", install_wait).await.map_err(in_phase("setup"))?;
    waited.map_err(in_phase("setup"))?;
    timings.insert("setup".to_owned(), t.elapsed().as_secs_f64());
    say.line(&format!("setup: done; SSH answers on 127.0.0.1:{port} after {}", minutes(t.elapsed())));

    // 4. provision
    let t = Instant::now();
    let commands = &recipe.provision.commands;
    for (i, line) in commands.iter().enumerate() {
        say.line(&format!("provision {}/{}: {line}", i + 1, commands.len()));
        guard
            .step(
                &format!("provisioning command {} ({line})", i + 1),
                ssh.run(&ps::command(&ps::provision_script(line)), opts.command_timeout, 0),
            )
            .await
            .map_err(in_phase("provision"))?;
    }
    if let Err(e) = guard.step("trimming the disk", ssh.run(&ps::command(ps::TRIM), Duration::from_secs(1800), 0)).await
    {
        say.line(&format!("provision: warning: trimming the system volume failed ({e}); the image may be larger"));
    }
    timings.insert("provision".to_owned(), t.elapsed().as_secs_f64());

    // 5. shutdown
    let t = Instant::now();
    say.line("shutdown: Stop-Computer over SSH");
    let poweroff = {
        let ssh = ssh.clone();
        async move {
            let _ = ssh.run(&ps::command(ps::SHUTDOWN), Duration::from_secs(60), 0).await;
        }
    };
    let plan = StopPlan { guest: None, powerdown: Some(Duration::from_secs(600)), quit: None }
        .with_guest(poweroff, Duration::from_secs(900));
    let stopped = qemu.stop(plan).await.map_err(|e| in_phase("shutdown")(e.into()))?;
    drop(qemu);
    if let Some(tpm) = swtpm {
        tokio::task::spawn_blocking(move || tpm.stop(Duration::from_secs(10))).await.ok();
    }
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
    finish(recipe, w, opts, &say, &made, inputs, inputs_sha256, shutdown, timings, work, &out_name, &parent)
        .await
        .map_err(in_phase("finish"))
}

/// Starts swtpm (when the machine has a TPM) and QEMU on a free SSH port and VNC display (others if taken).
async fn start(
    m: &mut WindowsMachine,
    sockets: &Path,
    serial_log: &Path,
    dir: &Path,
) -> Result<(Qemu, Option<Swtpm>, u16, u16), BuildError> {
    let (qemu, (swtpm, display)) = start_on_free_ports(dir, || {
        // swtpm serves one QEMU: a try that fails takes its emulator with it, so each try starts its own.
        let swtpm = match &m.tpm_socket {
            Some(socket) => {
                let cmd = SwtpmCommand::new(dir.join(names::TPM_DIR), socket.clone());
                Some(Swtpm::start(&cmd, Duration::from_secs(10))?)
            }
            None => None,
        };
        m.ssh_port = free_local_port()?;
        let display = free_local_vnc_display()?;
        let mut vnc = qemu::Vnc::localhost(display);
        vnc.password = true;
        let cmd = m.supervised(
            sockets.join("qmp.sock"),
            (sockets.join("serial.sock"), serial_log.to_owned()),
            dir.join(QEMU_PIDFILE),
            vnc,
        );
        Ok((cmd, (swtpm, display)))
    })
    .await?;
    Ok((qemu, swtpm, m.ssh_port, 5900 + display))
}

/// Setup: the automation script (if any) against the screen while waiting for SSH; both must finish within
/// `limit`; a progress line every `opts.progress_every`.
async fn setup(
    say: &Say,
    ssh: &GuestSsh,
    script: Option<&(PathBuf, automate::script::Script)>,
    (vnc_port, vnc_password): (u16, &Secret),
    limit: Duration,
    opts: &BuildOptions,
) -> Result<(), BuildError> {
    let started = Instant::now();
    let ready = async {
        ssh.wait_ready_with(limit, Duration::from_secs(5), &ps::command(ps::READY)).await.map_err(|e| {
            BuildError::Io {
                op: "waiting for SSH with the generated key (maxInstallTime) on",
                path: PathBuf::from(ssh.target.to_string()),
                source: std::io::Error::other(e.to_string()),
            }
        })?;
        Ok::<(), BuildError>(())
    };
    let automation = async {
        let Some((path, script)) = script else { return Ok(()) };
        let mut run_opts = automate::runner::RunOptions::new(format!("127.0.0.1:{vnc_port}"));
        run_opts.vnc_password = Some(vnc_password.clone());
        let mut progress = |line: &str| say.line(&format!("setup: automate: {line}"));
        let result = automate::runner::run(script, &run_opts, &mut progress).await;
        if result.outcome == automate::result::Outcome::Passed {
            say.line("setup: the automation script passed");
            Ok(())
        } else {
            Err(BuildError::Automation {
                script: path.clone(),
                detail: result.error.unwrap_or_else(|| result.outcome.as_str().to_owned()),
            })
        }
    };
    let both = async { tokio::try_join!(ready, automation).map(drop) };
    tokio::pin!(both);
    let mut tick = tokio::time::interval(opts.progress_every);
    tick.tick().await;
    loop {
        tokio::select! {
            done = &mut both => return done,
            _ = tick.tick() => say.line(&format!(
                "setup: waiting for Setup and first logon (SSH with the generated key): {} of at most {}",
                minutes(started.elapsed()),
                minutes(limit)
            )),
        }
    }
}

/// The file beside the build's sockets holding the VNC password.
const VNC_PASSWORD: &str = "vnc-password";

/// A random VNC password: VNC Authentication uses 8 characters.
pub(crate) fn vnc_secret() -> Secret {
    use rand::RngExt;
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    Secret::new((0..8).map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())])).collect::<String>())
}

/// `12m05s`.
pub(crate) fn minutes(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 { format!("{}m{:02}s", s / 60, s % 60) } else { format!("{:.1}s", d.as_secs_f64()) }
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    recipe: &Recipe,
    w: &WindowsSource,
    opts: &BuildOptions,
    say: &Say,
    made: &prepare::Made,
    inputs: serde_json::Value,
    inputs_sha256: String,
    shutdown: &str,
    mut timings: std::collections::BTreeMap<String, f64>,
    work: WorkDir,
    out_name: &str,
    parent: &Path,
) -> Result<Outcome, BuildError> {
    let dir = work.path().to_owned();
    // Install-only files: the answer file and media hold the password.
    for f in [names::ANSWER_MEDIA, names::ANSWER_XML, names::INSTALL, names::PREPARED, "tpm/.lock"] {
        match std::fs::remove_file(dir.join(f)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(BuildError::Io { op: "removing", path: dir.join(f), source }),
        }
    }
    // The run script boots an overlay in a state directory beside the image, with the state's own copies of the
    // firmware variables and the TPM state (qemu::script): a VM's changes never reach the image as built.
    let built_at_unix =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut copied = vec![PathBuf::from(names::VARS)];
    if w.tpm {
        copied.push(PathBuf::from(names::TPM_DIR));
    }
    let state = qemu::VmState {
        build: format!("{}-{built_at_unix}", &inputs_sha256[..inputs_sha256.len().min(12)]),
        pinned: vec![PathBuf::from(files::DISK)],
        disk: PathBuf::from(files::DISK),
        copied,
    };
    let mut relative = prepare::machine_in(Path::new(""), recipe, w, made.accel.accel, None);
    relative.disk = PathBuf::from(qemu::VmState::OVERLAY);
    let mut before = Vec::new();
    if w.tpm {
        let mut swtpm = SwtpmCommand::new(names::TPM_DIR, names::TPM_SOCKET);
        swtpm.daemon = true;
        before.push(swtpm.script_argv());
    }
    let login = login_hint(&opts.out, recipe.ssh_port, &recipe.username, made.generated_key.is_some(), &made.key_path);
    let script = RunScript {
        comments: vec![
            format!("{} — Windows built by vmkit {} ({}).", recipe.name, env!("CARGO_PKG_VERSION"), made.accel.accel),
            "Starts the image's TPM (swtpm, state in tpm/) and boots it; extra arguments go to QEMU (e.g. -display gtk)."
                .to_owned(),
            format!("Log in from another terminal: {login}"),
        ],
        cd_to_script_dir: true,
        pass_args: true,
        before,
        state: Some(state),
    }
    .render(&relative.interactive())?;
    write_mode(&dir.join(files::RUN), script.as_bytes(), 0o755)?;

    let mut tools = std::collections::BTreeMap::new();
    tools.insert("qemu".to_owned(), version("qemu-system-x86_64", &["--version"], "qemu-system-x86").await?);
    tools.insert("qemu-img".to_owned(), version("qemu-img", &["--version"], "qemu-utils").await?);
    if w.tpm {
        tools.insert("swtpm".to_owned(), version("swtpm", &["--version"], "swtpm").await?);
    }
    let outputs = hash_outputs(&dir).await?;
    let disk_size = image_info(&dir.join(files::DISK)).await?.virtual_size;
    timings.insert("total".to_owned(), say.elapsed());
    let p = &made.prepared;
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        vmkit: env!("CARGO_PKG_VERSION").to_owned(),
        name: recipe.name.clone(),
        inputs_sha256,
        inputs,
        base: BaseRecord::Windows {
            iso: p.iso.clone(),
            virtio: p.virtio.clone(),
            image_index: p.image_index,
            edition: p.edition.clone(),
            drivers: p.drivers.clone(),
            bypasses: p.bypasses.clone(),
        },
        machine: MachineRecord {
            accel: made.accel.accel.to_string(),
            accel_reason: made.accel.reason.clone(),
            memory: recipe.memory,
            cpus: recipe.cpus,
            disk: files::DISK.to_owned(),
            seed: None,
            windows: Some(WindowsMachineRecord {
                firmware_code: relative.firmware_code.display().to_string(),
                vars: names::VARS.to_owned(),
                secure_boot: w.secure_boot,
                tpm_state: w.tpm.then(|| names::TPM_DIR.to_owned()),
            }),
            kernel: None,
            initrd: None,
            disk_size,
        },
        ssh: SshRecord::new(&recipe.username, recipe.ssh_port, made.generated_key.clone(), &made.keypair),
        hostname: w.computer_name.clone(),
        tools,
        outputs,
        shutdown: shutdown.to_owned(),
        timings,
        built_at_unix,
        // Windows is not generalised by vmkit (sysprep is the recipe's to run): no build identity to compare.
        build_identity: None,
    };
    crate::build::write_manifest(&dir, &manifest)?;
    publish(work, &opts.out, out_name, parent)?;
    say.line(&format!("built {} in {}", opts.out.display(), minutes(Duration::from_secs_f64(say.elapsed()))));
    Ok(Outcome::Built(Box::new(manifest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_wrap_once_and_keep_the_bad_input_verdict() {
        let inner = BuildError::Script("x.yaml:1:1: bad".into());
        let e = in_phase("setup")(in_phase("prepare")(inner));
        assert_eq!(e.to_string(), "prepare failed: automate: x.yaml:1:1: bad");
        assert!(e.is_bad_input());
        assert!(!in_phase("shutdown")(BuildError::NotShutDown).is_bad_input());
        assert_eq!(minutes(Duration::from_secs(725)), "12m05s");
    }

    #[test]
    fn the_digest_covers_media_password_and_script_and_records_no_password() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("pw"), "first secret\n").unwrap();
        std::fs::write(d.join("a.iso"), b"iso a").unwrap();
        std::fs::write(d.join("b.iso"), b"iso b").unwrap();
        std::fs::write(d.join("s.yaml"), "boot_commands:\n  - wait: 'x'\n").unwrap();
        std::fs::write(
            d.join("w.toml"),
            "name = \"w\"\nusername = \"agent\"\n[source.windows]\nversion = 11\nedition = \"Pro\"\n\
             passwordFile = \"pw\"\niso = \"a.iso\"\nautomate = \"s.yaml\"\n",
        )
        .unwrap();
        let recipe = Recipe::load(&d.join("w.toml")).unwrap();
        let crate::recipe::Source::Windows(w) = &recipe.source else { panic!("not Windows") };
        let opts = BuildOptions::new(d.join("out"), d.join("cache"));
        let (value, first) = inputs_of(&recipe, w, &opts).unwrap();
        assert_eq!(inputs_of(&recipe, w, &opts).unwrap().1, first, "same inputs, same digest");
        assert!(!value.to_string().contains("first secret"), "the password is recorded: {value}");
        let mut over = opts.clone();
        over.media.iso = Some(d.join("b.iso"));
        assert_ne!(inputs_of(&recipe, w, &over).unwrap().1, first, "--iso is an input");
        std::fs::write(d.join("a.iso"), b"iso a, changed in place").unwrap();
        let (_, changed_iso) = inputs_of(&recipe, w, &opts).unwrap();
        assert_ne!(changed_iso, first, "a changed ISO file is a new input");
        std::fs::write(d.join("pw"), "second secret\n").unwrap();
        let (_, changed_pw) = inputs_of(&recipe, w, &opts).unwrap();
        assert_ne!(changed_pw, changed_iso, "the password is an input");
        std::fs::write(d.join("s.yaml"), "boot_commands:\n  - wait: 'y'\n").unwrap();
        assert_ne!(inputs_of(&recipe, w, &opts).unwrap().1, changed_pw, "the automation script is an input");
    }
}
