//! `vmkit cloud-init seed`: a NoCloud seed image on its own, for VMs that vmkit does not build.
//!
//! Maps flags onto the `cloudinit` crate's model: one admin user (SSH keys, passwordless sudo, no password), the
//! hostname, extra packages, files and commands. Either brings the user's public keys or generates an ed25519
//! pair into a directory. Writes the seed atomically; its path and the key paths go to stdout.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::exit;
use crate::output::outln;

/// Make cloud-init NoCloud seeds.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Write a NoCloud seed (ISO9660 `cidata` or vfat `CIDATA`) with user-data, meta-data.
    Seed(SeedArgs),
}

#[derive(Debug, clap::Args)]
struct SeedArgs {
    /// The guest's hostname.
    #[arg(long)]
    hostname: String,

    /// The login user (gets passwordless sudo; password login stays locked).
    #[arg(long, value_name = "NAME")]
    user: String,

    /// A public key file (authorized_keys lines) for the user; repeatable.
    #[arg(long = "ssh-key", value_name = "FILE")]
    ssh_keys: Vec<PathBuf>,

    /// Generate an ed25519 key pair into DIR (id_ed25519 with mode 0600, id_ed25519.pub) and authorize it.
    #[arg(long, value_name = "DIR")]
    key_dir: Option<PathBuf>,

    /// An extra package to install on first boot; repeatable.
    #[arg(long = "package", value_name = "NAME")]
    packages: Vec<String>,

    /// Write a host file into the guest on first boot (mode 0644): GUEST_PATH=HOST_FILE; repeatable.
    #[arg(long = "write-file", value_name = "GUEST_PATH=HOST_FILE")]
    write_files: Vec<String>,

    /// A shell command to run at the end of first boot; repeatable, run in order.
    #[arg(long = "run", value_name = "COMMAND")]
    run: Vec<String>,

    /// Seed filesystem.
    #[arg(long, value_enum, default_value_t = Format::Iso)]
    format: Format,

    /// Where to write the seed image.
    #[arg(long, short, value_name = "FILE")]
    out: PathBuf,

    /// Also write the plain user-data and meta-data files into DIR.
    #[arg(long, value_name = "DIR")]
    files_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Iso,
    Vfat,
}

/// Runs `vmkit cloud-init …`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Sub::Seed(seed) => run_seed(seed),
    }
}

fn run_seed(args: SeedArgs) -> anyhow::Result<ExitCode> {
    if args.ssh_keys.is_empty() && args.key_dir.is_none() {
        return Err(
            exit::BadInput("give --ssh-key FILE or --key-dir DIR: the user logs in with a key only".into()).into()
        );
    }
    // Check names before anything is written (a key pair for a seed that cannot be made is litter).
    cloudinit::validate_hostname(&args.hostname).map_err(input_or_failure)?;
    cloudinit::validate_username(&args.user).map_err(input_or_failure)?;
    let mut keys = Vec::new();
    for file in &args.ssh_keys {
        let text = userfile::read_to_string(file, userfile::Limit::Key)
            .map_err(|e| exit::BadInput(format!("--ssh-key: {e}")))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            cloudinit::validate_authorized_key(line).map_err(|e| exit::BadInput(format!("{}: {e}", file.display())))?;
            keys.push(line.to_owned());
        }
    }
    // A generated pair stays in memory until everything else is written: a failed command leaves no key behind,
    // and an existing key is never replaced (checked now, and again as the files are created).
    let generated = match &args.key_dir {
        Some(dir) => {
            cloudinit::KeyPair::check_free(dir, KEY_NAME).map_err(input_or_failure)?;
            let pair = cloudinit::KeyPair::generate(&format!("vmkit@{}", args.hostname))?;
            keys.push(pair.public_openssh());
            Some((dir, pair))
        }
        None => None,
    };

    let mut config = cloudinit::CloudConfig::new(&args.hostname);
    config.users.push(cloudinit::User::admin(&args.user, keys));
    config.packages = args.packages;
    for spec in &args.write_files {
        let (guest, host) = spec
            .split_once('=')
            .ok_or_else(|| exit::BadInput(format!("--write-file `{spec}`: expected GUEST_PATH=HOST_FILE")))?;
        let content = userfile::read_to_string(std::path::Path::new(host), userfile::Limit::Content)
            .map_err(|e| exit::BadInput(format!("--write-file `{spec}`: {e}")))?;
        config.write_files.push(cloudinit::WriteFile {
            path: guest.to_owned(),
            content,
            permissions: Some(0o644),
            owner: None,
            append: false,
        });
    }
    config.runcmd = args.run.into_iter().map(cloudinit::RunCommand::Shell).collect();

    let seed = cloudinit::Seed::new(&config, None).map_err(input_or_failure)?;
    let format = match args.format {
        Format::Iso => cloudinit::SeedFormat::Iso,
        Format::Vfat => cloudinit::SeedFormat::Vfat,
    };
    seed.write_image(&args.out, format)?;
    if let Some(dir) = &args.files_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        seed.write_files(dir)?;
    }
    let key_files = match generated {
        Some((dir, pair)) => {
            let written = std::fs::create_dir_all(dir)
                .with_context(|| format!("creating {}", dir.display()))
                .and_then(|()| pair.write(dir, KEY_NAME).map_err(input_or_failure));
            match written {
                Ok(files) => Some(files),
                Err(e) => {
                    // The seed authorizes a key that was not saved: it is of no use.
                    let _ = std::fs::remove_file(&args.out);
                    return Err(e);
                }
            }
        }
        None => None,
    };
    outln!("seed: {}", args.out.display());
    if let Some(files) = key_files {
        outln!("private key: {}", files.private.display());
        outln!("public key: {}", files.public.display());
    }
    Ok(ExitCode::from(exit::OK))
}

/// The generated key's file name in `--key-dir`.
const KEY_NAME: &str = "id_ed25519";

fn input_or_failure(err: cloudinit::CloudInitError) -> anyhow::Error {
    if err.is_bad_input() { exit::BadInput(err.to_string()).into() } else { err.into() }
}
