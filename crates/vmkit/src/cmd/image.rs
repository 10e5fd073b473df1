//! `vmkit image build`, `vmkit image test` and `vmkit image prepare`: unattended Linux and Windows images from a
//! TOML recipe, their boot test, and any recipe made ready up to its first boot; `vmkit image windows-editions`:
//! what a Windows ISO offers (read by the `media` crate).
//!
//! The work is in the `images` crate; this module maps flags onto it, prints the library's progress events on
//! stderr (the image, the time since the build started, the phase), turns Ctrl-C and SIGTERM into a clean
//! cancellation (the build future is dropped: QEMU is killed and the hidden work directory removed, so no partial
//! output remains), and prints what the user does next (the `run` script, the SSH command).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::cmd::fetch::Progress;
use crate::exit;
use crate::output::outln;

/// Exit code after Ctrl-C or SIGTERM (128 + SIGINT, as shells report it).
const INTERRUPTED: u8 = 130;

/// Build unattended Linux, Windows and macOS VM images from recipes, and boot-test them.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Build the image a recipe describes into an output directory (nothing is done if the inputs are unchanged).
    Build(BuildArgs),
    /// Boot a built image from a throwaway overlay and run the SSH health check. Exit 0 pass, 1 fail.
    Test(TestArgs),
    /// Everything up to the first boot into a new directory, and stop there, with an `install` script that runs
    /// the first boot. Windows recipes: verified media, keys, answer file and media, firmware VARS, TPM state,
    /// disk. macOS recipes: host pre-flight, verified OpenCore release, boot disk with config.plist and the
    /// image's Mac identity, installer disk from the recovery image, disk, firmware VARS. Linux recipes: the base,
    /// keys, NoCloud seed, disk and kernel.
    Prepare(PrepareArgs),
    /// Validate a recipe without building anything; print it as vmkit reads it (defaults applied, file contents
    /// inlined, the Ubuntu source as its URL). Exit 0 valid, 2 not.
    Check(CheckArgs),
    /// List the editions of a Windows ISO (index, edition id, name, architecture, build). Reads only the install
    /// image's header and XML. Exit 2 if the file is not Windows media.
    WindowsEditions(EditionsArgs),
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    /// The recipe (TOML).
    #[arg(value_name = "RECIPE")]
    recipe: PathBuf,

    /// Print the validated recipe as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct PrepareArgs {
    /// The recipe (TOML).
    #[arg(value_name = "RECIPE")]
    recipe: PathBuf,

    /// Output directory (must not exist unless --replace is given).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,

    /// Replace an existing output directory.
    #[arg(long)]
    replace: bool,

    #[command(flatten)]
    media: MediaArgs,

    #[command(flatten)]
    common: Common,

    /// Download progress: a bar on a terminal, plain lines otherwise.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    progress: Progress,
}

/// Media on the command line, overriding a recipe's.
#[derive(Debug, clap::Args)]
struct MediaArgs {
    /// The Windows install ISO (overrides the recipe's `iso`).
    #[arg(long, value_name = "PATH")]
    iso: Option<PathBuf>,

    /// The VirtIO driver ISO (overrides the recipe's `virtio`).
    #[arg(long, value_name = "PATH")]
    virtio: Option<PathBuf>,

    /// A macOS recovery image on disk (overrides the recipe's `recovery`; otherwise it is fetched from Apple).
    #[arg(long, value_name = "PATH")]
    recovery: Option<PathBuf>,

    /// An OpenCore release zip (or unpacked release) on disk (overrides the recipe's `opencore`).
    #[arg(long, value_name = "PATH")]
    opencore: Option<PathBuf>,

    /// macOS: run under TCG emulation when KVM is not usable (an install then takes many hours).
    #[arg(long)]
    allow_tcg: bool,
}

#[derive(Debug, clap::Args)]
struct EditionsArgs {
    /// The Windows installation ISO.
    #[arg(value_name = "ISO")]
    iso: PathBuf,

    /// Print the media and its editions as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct BuildArgs {
    /// The recipe (TOML).
    #[arg(value_name = "RECIPE")]
    recipe: PathBuf,

    /// Output directory [default: the recipe's name, in the current directory].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    #[command(flatten)]
    common: Common,

    #[command(flatten)]
    media: MediaArgs,

    /// How long the guest may take until SSH answers, in seconds (Linux; a Windows install has the recipe's
    /// `maxInstallTime`).
    #[arg(long, value_name = "SECONDS", default_value_t = 1200, value_parser = clap::value_parser!(u64).range(1..=86400))]
    boot_timeout: u64,

    /// Download progress: a bar on a terminal, plain lines otherwise.
    #[arg(long, value_enum, default_value_t = Progress::Auto)]
    progress: Progress,
}

#[derive(Debug, clap::Args)]
struct TestArgs {
    /// The image's output directory.
    #[arg(value_name = "DIR")]
    dir: PathBuf,

    /// Boot even if these exact files passed before.
    #[arg(long)]
    no_cache: bool,

    /// The private key, if the recipe brought its own (`sshKey`).
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,

    /// How long the guest may take until SSH answers, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 1200, value_parser = clap::value_parser!(u64).range(1..=86400))]
    boot_timeout: u64,

    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Cache directory [default: $VMKIT_CACHE_DIR, else $XDG_CACHE_HOME/vmkit].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// No step messages on stderr.
    #[arg(long, short)]
    quiet: bool,
}

/// Runs `vmkit image …`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Sub::WindowsEditions(editions) = args.command {
        return windows_editions(&editions);
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting tokio")?;
    match args.command {
        Sub::Build(build) => runtime.block_on(interruptible(run_build(build))),
        Sub::Test(test) => runtime.block_on(interruptible(run_test(test))),
        Sub::Prepare(prepare) => runtime.block_on(interruptible(run_prepare(prepare))),
        Sub::Check(check) => run_check(&check),
        Sub::WindowsEditions(_) => unreachable!("handled above"),
    }
}

/// Runs `fut` unless Ctrl-C or SIGTERM comes first; then `fut` is dropped (its cleanup runs) and the exit is 130.
async fn interruptible(fut: impl Future<Output = anyhow::Result<ExitCode>>) -> anyhow::Result<ExitCode> {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).context("watching SIGTERM")?;
    tokio::select! {
        result = fut => result,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("vmkit: interrupted; stopped QEMU and removed the unfinished work");
            Ok(ExitCode::from(INTERRUPTED))
        }
        _ = term.recv() => {
            eprintln!("vmkit: terminated; stopped QEMU and removed the unfinished work");
            Ok(ExitCode::from(INTERRUPTED))
        }
    }
}

async fn run_build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let recipe = images::recipe::Recipe::load(&args.recipe).map_err(|e| exit::BadInput(e.to_string()))?;
    let cache_root = images::cache_root(args.common.cache_dir.as_deref())?;
    let out = args.out.unwrap_or_else(|| PathBuf::from(&recipe.name));
    let windows = matches!(recipe.source, images::recipe::Source::Windows(_));
    if !windows && (args.media.iso.is_some() || args.media.virtio.is_some()) {
        return Err(exit::BadInput(format!(
            "{}: --iso and --virtio replace a Windows recipe's media; this recipe is not a Windows recipe",
            args.recipe.display()
        ))
        .into());
    }
    let macos = matches!(recipe.source, images::recipe::Source::Macos(_));
    if !macos && (args.media.recovery.is_some() || args.media.opencore.is_some() || args.media.allow_tcg) {
        return Err(exit::BadInput(format!(
            "{}: --recovery, --opencore and --allow-tcg are for macOS recipes; this recipe is not one",
            args.recipe.display()
        ))
        .into());
    }
    let mut opts = images::build::BuildOptions::new(out.clone(), cache_root);
    opts.boot_timeout = Duration::from_secs(args.boot_timeout);
    opts.quiet = args.common.quiet;
    opts.progress = args.progress.into();
    opts.media = images::windows::prepare::MediaOverrides { iso: args.media.iso, virtio: args.media.virtio };
    opts.macos = images::macos::build::MacosOverrides {
        recovery: args.media.recovery,
        opencore: args.media.opencore,
        allow_tcg: args.media.allow_tcg,
    };
    // The library reports; the binary prints: the phase and the time since the build started.
    opts.sink = Some(progress_sink());
    let outcome = images::build::build(&recipe, &opts).await.map_err(|e| {
        if e.is_bad_input() { anyhow::Error::from(exit::BadInput(e.to_string())) } else { anyhow::Error::from(e) }
    })?;
    let (manifest, verb) = match &outcome {
        images::build::Outcome::UpToDate(m) => (m, "up to date (inputs unchanged)"),
        images::build::Outcome::Built(m) => (m, "built"),
    };
    let key_file = match &manifest.ssh.private_key {
        Some(name) => out.join(name),
        None => recipe.ssh_key.clone().unwrap_or_default(),
    };
    outln!("{}: {verb}", out.display());
    outln!("start it:  {}", out.join(images::build::files::RUN).display());
    outln!(
        "log in:    {}",
        images::build::login_hint(
            &out,
            manifest.ssh.port,
            &manifest.ssh.user,
            manifest.ssh.private_key.is_some(),
            &key_file
        )
    );
    Ok(ExitCode::from(exit::OK))
}

fn run_check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let recipe = images::recipe::Recipe::load(&args.recipe).map_err(|e| exit::BadInput(e.to_string()))?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&recipe)?);
    } else {
        outln!("{}: a valid recipe for the image {}", args.recipe.display(), recipe.name);
    }
    Ok(ExitCode::from(exit::OK))
}

async fn run_test(args: TestArgs) -> anyhow::Result<ExitCode> {
    let cache_root = images::cache_root(args.common.cache_dir.as_deref())?;
    if !args.dir.join(images::manifest::MANIFEST).is_file() {
        return Err(exit::BadInput(format!(
            "{} has no manifest.json: not a vmkit image directory",
            args.dir.display()
        ))
        .into());
    }
    let opts = images::boottest::TestOptions {
        cache_root,
        use_cache: !args.no_cache,
        key: args.key,
        boot_timeout: Duration::from_secs(args.boot_timeout),
        quiet: args.common.quiet,
        sink: Some(progress_sink()),
    };
    let report = images::boottest::test_image(&args.dir, &opts).await?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let verdict = if report.passed { "passed" } else { "FAILED" };
        let cached = if report.cached { " (cached result of an earlier boot of these exact files)" } else { "" };
        outln!("{}: {verdict}{cached}: {}", args.dir.display(), report.detail);
    }
    Ok(ExitCode::from(if report.passed { exit::OK } else { exit::FAILED }))
}

async fn run_prepare(args: PrepareArgs) -> anyhow::Result<ExitCode> {
    let recipe = images::recipe::Recipe::load(&args.recipe).map_err(|e| exit::BadInput(e.to_string()))?;
    let bad_or_failed = |e: images::build::BuildError| {
        if e.is_bad_input() { anyhow::Error::from(exit::BadInput(e.to_string())) } else { anyhow::Error::from(e) }
    };
    let windows_flags = args.media.iso.is_some() || args.media.virtio.is_some();
    let macos_flags = args.media.recovery.is_some() || args.media.opencore.is_some() || args.media.allow_tcg;
    let mismatch = match &recipe.source {
        images::recipe::Source::Macos(_) if windows_flags => Some(("--iso and --virtio", "Windows")),
        images::recipe::Source::Windows(_) if macos_flags => Some(("--recovery, --opencore and --allow-tcg", "macOS")),
        _ => None,
    };
    if let Some((flags, kind)) = mismatch {
        return Err(exit::BadInput(format!("{}: {flags} are for {kind} recipes", args.recipe.display())).into());
    }
    if let images::recipe::Source::Macos(macos) = &recipe.source {
        let opts = images::macos::prepare::PrepareOptions {
            out: args.out.clone(),
            cache_root: images::cache_root(args.common.cache_dir.as_deref())?,
            replace: args.replace,
            recovery: args.media.recovery,
            opencore: args.media.opencore,
            allow_tcg: args.media.allow_tcg,
            progress: args.progress.into(),
            quiet: args.common.quiet,
            sink: Some(progress_sink()),
        };
        let prepared = images::macos::prepare::prepare(&recipe, macos, &opts).await.map_err(bad_or_failed)?;
        outln!("{}: prepared (macOS {}, {})", args.out.display(), prepared.version, prepared.accel);
        outln!("install:   {}", args.out.join(images::macos::prepare::names::INSTALL).display());
        return Ok(ExitCode::from(exit::OK));
    }
    let images::recipe::Source::Windows(windows) = &recipe.source else {
        return prepare_linux(&args, &recipe).await;
    };
    let opts = images::windows::prepare::PrepareOptions {
        out: args.out.clone(),
        cache_root: images::cache_root(args.common.cache_dir.as_deref())?,
        replace: args.replace,
        media: images::windows::prepare::MediaOverrides { iso: args.media.iso, virtio: args.media.virtio },
        progress: args.progress.into(),
        quiet: args.common.quiet,
        sink: Some(progress_sink()),
    };
    let prepared = images::windows::prepare::prepare(&recipe, windows, &opts).await.map_err(bad_or_failed)?;
    outln!("{}: prepared (image index {}, {})", args.out.display(), prepared.image_index, prepared.accel);
    outln!("install:   {}", args.out.join(images::windows::prepare::names::INSTALL).display());
    Ok(ExitCode::from(exit::OK))
}

/// `vmkit image prepare` for a Linux recipe: base, key, seed, disk, kernel, `install` script; no boot.
async fn prepare_linux(args: &PrepareArgs, recipe: &images::recipe::Recipe) -> anyhow::Result<ExitCode> {
    if args.media.iso.is_some() || args.media.virtio.is_some() {
        return Err(exit::BadInput(format!(
            "{}: --iso and --virtio replace a Windows recipe's media; this recipe is not a Windows recipe",
            args.recipe.display()
        ))
        .into());
    }
    let mut opts =
        images::build::BuildOptions::new(args.out.clone(), images::cache_root(args.common.cache_dir.as_deref())?);
    opts.quiet = args.common.quiet;
    opts.progress = args.progress.into();
    opts.sink = Some(progress_sink());
    let prepared = images::build::prepare_linux(recipe, &args.out, args.replace, &opts).await.map_err(|e| {
        if e.is_bad_input() { anyhow::Error::from(exit::BadInput(e.to_string())) } else { anyhow::Error::from(e) }
    })?;
    outln!("{}: prepared ({})", args.out.display(), prepared.accel);
    outln!("first boot: {}", args.out.join(images::windows::prepare::names::INSTALL).display());
    Ok(ExitCode::from(exit::OK))
}

/// Prints a build's progress on stderr: the image, the time since the build started, the step.
fn progress_sink() -> images::build::ProgressSink {
    images::build::ProgressSink(std::sync::Arc::new(|e: &images::build::ProgressEvent| {
        eprintln!("vmkit: {} [{:>6.1}s] {}", e.image, e.elapsed.as_secs_f64(), e.message);
    }))
}

/// `vmkit image windows-editions ISO [--json]`.
fn windows_editions(args: &EditionsArgs) -> anyhow::Result<ExitCode> {
    let media = media::windows::inspect_path(&args.iso).map_err(|e| {
        if e.is_bad_input() {
            anyhow::Error::from(exit::BadInput(format!("{}: {e}", args.iso.display())))
        } else {
            anyhow::Error::from(e)
        }
    })?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&media)?);
        return Ok(ExitCode::from(exit::OK));
    }
    let format = match media.format {
        media::wim::Format::Wim => "WIM",
        media::wim::Format::Esd => "ESD",
    };
    outln!(
        "{}: {}, volume {:?}; {} ({format}, {} images)",
        args.iso.display(),
        media.filesystem,
        media.volume_id,
        media.image_path,
        media.editions.len()
    );
    let rows: Vec<[String; 5]> = media
        .editions
        .iter()
        .map(|e| {
            [
                e.index.to_string(),
                e.edition_id.clone().unwrap_or_else(|| "-".into()),
                e.title().to_string(),
                e.arch.map_or_else(|| "-".into(), |a| a.to_string()),
                e.version.map_or_else(|| "-".into(), |v| v.to_string()),
            ]
        })
        .collect();
    let header = ["INDEX", "EDITION ID", "NAME", "ARCH", "BUILD"].map(String::from);
    let mut widths = header.each_ref().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        outln!("{}", cells.join("  ").trim_end());
    }
    Ok(ExitCode::from(exit::OK))
}
