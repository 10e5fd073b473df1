//! `vmkit fetch`: download a file with a required SHA-256 into the content-addressed cache.
//!
//! `vmkit fetch URL --sha256 HEX` for any file; `vmkit fetch ubuntu …` and `vmkit fetch virtio-win` build the URL
//! of a named source. The verified file's path in the cache goes to stdout (one line, for scripts); progress and
//! messages go to stderr. `vmkit fetch macos --version sonoma` speaks Apple's recovery protocol and prints the
//! verified recovery image's path (or, with `--json`, what was fetched and how it was verified).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::exit;
use crate::output::outln;

/// Download a file with a required SHA-256 into vmkit's cache (reused without network next time).
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    source: Option<Named>,

    /// The URL (http, https or file).
    #[arg(required = true, value_name = "URL")]
    url: Option<String>,

    /// The SHA-256 the file must have (64 hex digits).
    #[arg(long, required = true, value_name = "HEX")]
    sha256: Option<String>,

    #[command(flatten)]
    common: Common,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Cache directory [default: $VMKIT_CACHE_DIR, else $XDG_CACHE_HOME/vmkit].
    #[arg(long, value_name = "DIR", global = true)]
    cache_dir: Option<PathBuf>,

    /// Progress display: a bar on a terminal, plain lines otherwise.
    #[arg(long, value_enum, default_value_t = Progress::Auto, global = true)]
    progress: Progress,
}

/// `--progress` of the commands that download (`fetch`, `image build`).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Progress {
    Auto,
    Bar,
    Lines,
    Off,
}

impl From<Progress> for fetch::ProgressMode {
    fn from(p: Progress) -> Self {
        match p {
            Progress::Auto => fetch::ProgressMode::Auto,
            Progress::Bar => fetch::ProgressMode::Bar,
            Progress::Lines => fetch::ProgressMode::Lines,
            Progress::Off => fetch::ProgressMode::Off,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum Named {
    /// An Ubuntu server cloud image: cloud-images.ubuntu.com/releases/CODENAME/release[-BUILD]/…
    Ubuntu {
        /// Release version, e.g. 24.04.
        #[arg(long, value_name = "VERSION")]
        release: String,
        /// Release codename, e.g. noble.
        #[arg(long)]
        codename: String,
        /// A dated build directory, e.g. 20260615 (recommended: the undated one changes under you).
        #[arg(long)]
        build: Option<String>,
        /// Architecture.
        #[arg(long, default_value = "amd64")]
        arch: String,
        /// The image's SHA-256 from that directory's SHA256SUMS.
        #[arg(long, value_name = "HEX")]
        sha256: String,
    },
    /// A macOS recovery image from Apple's recovery server, verified against its signed chunklist.
    #[command(disable_version_flag = true)]
    Macos {
        /// ventura, sonoma, sequoia or tahoe (or 13, 14, 15, 26).
        #[arg(long)]
        version: String,
        /// Print what was fetched as JSON (paths, digests, product, board id, signature status).
        #[arg(long)]
        json: bool,
        /// Accept a chunklist that carries no signature. Its chunks are still checked, but nothing shows that
        /// Apple made it. Never needed for Apple's own images.
        #[arg(long)]
        allow_unsigned: bool,
        /// Another recovery server (a mirror).
        #[arg(long, value_name = "URL", hide = true)]
        recovery_server: Option<String>,
    },
    /// The VirtIO drivers ISO for Windows guests (pinned build by default).
    VirtioWin {
        /// Build, e.g. 0.1.266-1 (requires --sha256 when not the pinned one).
        #[arg(long, default_value = fetch::VIRTIO_WIN_VERSION)]
        build: String,
        /// The ISO's SHA-256 [default: the pinned build's].
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
    },
}

/// Runs `vmkit fetch …`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Named::Macos { version, json, allow_unsigned, recovery_server }) = args.source {
        return macos(&args.common, &version, json, allow_unsigned, recovery_server.as_deref());
    }
    let source = match (args.source, args.url, args.sha256) {
        (Some(named), _, _) => named_source(named)?,
        (None, Some(url), Some(sha)) => fetch::Source::new(&url, digest(&sha)?).map_err(bad)?,
        _ => return Err(exit::BadInput("give a URL and --sha256, or a named source".into()).into()),
    };
    let cache = fetch::Cache::locate(args.common.cache_dir.as_deref())?;
    let fetcher = fetch::Fetcher::new(cache)?.progress(args.common.progress.into()).lines(stderr_lines());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting tokio")?;
    let fetched = runtime.block_on(fetcher.fetch(&source))?;
    if fetched.from_cache && !matches!(args.common.progress, Progress::Off) {
        eprintln!("fetch: {}: cached", source.name());
    }
    outln!("{}", fetched.path.display());
    Ok(ExitCode::from(exit::OK))
}

fn macos(
    common: &Common,
    version: &str,
    json: bool,
    allow_unsigned: bool,
    server: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let version: fetch::macos::MacosVersion = version.parse().map_err(bad)?;
    let cache = fetch::Cache::locate(common.cache_dir.as_deref())?;
    let fetcher = fetch::Fetcher::new(cache)?.progress(common.progress.into()).lines(stderr_lines());
    let mut recovery = fetch::macos::Recovery::new(fetcher)?.allow_unsigned(allow_unsigned);
    if let Some(url) = server {
        let url = url.parse().map_err(|e| exit::BadInput(format!("--recovery-server `{url}`: {e}")))?;
        recovery = recovery.server(url);
    }
    if allow_unsigned {
        eprintln!(
            "fetch: WARNING: --allow-unsigned: an unsigned chunklist will be accepted; nothing then shows that Apple made the image"
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting tokio")?;
    let got = runtime.block_on(recovery.fetch(version))?;
    if got.trust == fetch::chunklist::Trust::Unsigned {
        eprintln!(
            "fetch: WARNING: the chunklist of {} ({}) is UNSIGNED; its chunks match, but nothing shows that Apple made it",
            got.product, got.version
        );
    }
    if got.image.from_cache {
        eprintln!("fetch: macOS {version} ({}): cached", got.product);
    }
    if json {
        let report = serde_json::json!({
            "version": got.version.name(),
            "board_id": got.board_id,
            "os": got.os.as_str(),
            "product": got.product,
            "signed": got.trust == fetch::chunklist::Trust::Signed,
            "image": { "path": got.image.path, "sha256": got.image.sha256.to_hex(), "size": got.image.size, "from_cache": got.image.from_cache },
            "chunklist": { "path": got.chunklist.path, "sha256": got.chunklist.sha256.to_hex(), "size": got.chunklist.size },
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!("{}", got.image.path.display());
    }
    Ok(ExitCode::from(exit::OK))
}

fn named_source(named: Named) -> anyhow::Result<fetch::Source> {
    match named {
        Named::Macos { .. } => Err(exit::BadInput("macos is not a plain download".into()).into()),
        Named::Ubuntu { release, codename, build, arch, sha256 } => {
            let image = fetch::UbuntuCloudImage { version: release, codename, build, arch, sha256: digest(&sha256)? };
            Ok(image.source().map_err(bad)?)
        }
        Named::VirtioWin { build, sha256 } => {
            let pinned = fetch::VirtioWin::pinned();
            let sha256 = match sha256 {
                Some(hex) => digest(&hex)?,
                None if build == pinned.version => pinned.sha256,
                None => {
                    return Err(
                        exit::BadInput(format!("virtio-win {build} is not the pinned build: give --sha256")).into()
                    );
                }
            };
            Ok(fetch::VirtioWin { version: build, sha256 }.source().map_err(bad)?)
        }
    }
}

fn digest(hex: &str) -> anyhow::Result<fetch::Sha256> {
    hex.parse().map_err(|e: fetch::FetchError| exit::BadInput(e.to_string()).into())
}

fn bad(err: fetch::FetchError) -> anyhow::Error {
    if err.is_bad_input() { exit::BadInput(err.to_string()).into() } else { err.into() }
}

/// Download progress lines go to stderr (stdout carries the command's result).
pub(crate) fn stderr_lines() -> fetch::LineSink {
    fetch::LineSink(std::sync::Arc::new(|line: &str| eprintln!("{line}")))
}
