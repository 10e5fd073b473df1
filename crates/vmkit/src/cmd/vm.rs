//! `vmkit vm NAME …`: live with one desktop VM through libvirt (what the original's `vm-<name>` commands did).
//!
//! start, stop (ACPI power button, waits until off), force-stop, status, memstats, setmem go through the
//! libvirt API. view, console and ssh hand the terminal over to virt-viewer, `virsh console` and ssh. The
//! address for ssh comes from the config's `vms.<name>.ssh.host` when `--config` names one, else from libvirt:
//! DHCP leases of its network, then the guest agent, then the host's ARP table (IPv4 first).

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use desktop::libvirt::{Libvirt, Outcome};
use desktop::values::ByteSize;

use crate::cmd::desktop::{DEFAULT_URI, libvirt_error, load_path};
use crate::exit;
use crate::output::outln;

/// Start, stop and reach one VM (a libvirt domain).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// libvirt URI (before or after the action).
    #[arg(long, value_name = "URI", default_value = DEFAULT_URI, global = true)]
    connect: String,
    /// The desktop config the VM comes from (for `ssh`: user, host, port).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// The VM (libvirt domain) name.
    #[arg(value_name = "NAME")]
    name: String,
    #[command(subcommand)]
    action: VmAction,
}

#[derive(Debug, clap::Subcommand)]
enum VmAction {
    /// Start the VM.
    Start,
    /// Shut the VM down gracefully (ACPI power button) and wait until it is off.
    Stop {
        /// Seconds to wait; exit 1 when the guest is still running after them.
        #[arg(long, value_name = "SECS", default_value_t = 120)]
        timeout: u64,
        /// Return once the request is sent.
        #[arg(long)]
        no_wait: bool,
    },
    /// Stop the VM at once (pull the plug).
    ForceStop,
    /// State, memory, vCPUs, autostart and listeners.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Open the display with virt-viewer.
    View,
    /// Attach to the serial console (virsh console; leave with Ctrl+]).
    Console,
    /// Guest memory statistics from the balloon driver (KiB).
    Memstats {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set the running guest's memory (balloon target), e.g. 4G; at most the configured memory.
    Setmem {
        /// The new size: a number and K, M, G or T.
        #[arg(value_name = "SIZE")]
        size: String,
    },
    /// SSH into the guest; arguments after `--` go to ssh's remote command.
    Ssh {
        /// Login user [default: the config's ssh.user, else ssh's own default].
        #[arg(long, short = 'l')]
        user: Option<String>,
        /// Port [default: the config's ssh.port, else 22].
        #[arg(long, short = 'p')]
        port: Option<u16>,
        /// Private key [default: the config's ssh.identityFile, else ssh's own choice].
        #[arg(long, short = 'i', value_name = "FILE")]
        identity: Option<PathBuf>,
        /// An ssh option (`-o StrictHostKeyChecking=accept-new`); repeatable.
        #[arg(short = 'o', value_name = "OPTION")]
        option: Vec<String>,
        /// The remote command.
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// Print the guest's IP addresses (what `ssh` connects to).
    Address,
}

/// Runs `vmkit vm`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = args.name.as_str();
    let lv = Libvirt::connect(&args.connect)?;
    let vm = lv.vm(name).map_err(libvirt_error)?;
    match args.action {
        VmAction::Start => {
            let o = vm.start().map_err(libvirt_error)?;
            outln!("{name}: {}", if o == Outcome::Done { "started" } else { "already running" });
        }
        VmAction::Stop { timeout, no_wait } => {
            let wait = (!no_wait).then(|| Duration::from_secs(timeout));
            let o = vm.stop(wait).map_err(libvirt_error)?;
            let msg = match (o, no_wait) {
                (Outcome::AlreadyThere, _) => "not running",
                (Outcome::Done, true) => "shutdown requested",
                (Outcome::Done, false) => "stopped",
            };
            outln!("{name}: {msg}");
        }
        VmAction::ForceStop => {
            let o = vm.force_stop().map_err(libvirt_error)?;
            outln!("{name}: {}", if o == Outcome::Done { "stopped (forced)" } else { "not running" });
        }
        VmAction::Status { json } => {
            let s = vm.status().map_err(libvirt_error)?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                outln!("name:        {}", s.name);
                outln!("uuid:        {}", s.uuid);
                outln!("state:       {}", s.state);
                outln!("managed:     {}", if s.managed { "yes (vmkit)" } else { "no" });
                outln!("autostart:   {}", if s.autostart { "on" } else { "off" });
                outln!("vcpus:       {}", s.vcpus);
                outln!("memory:      {} of {}", ByteSize(s.memory_kib * 1024), ByteSize(s.max_memory_kib * 1024));
                for g in &s.graphics {
                    outln!("display:     {g}");
                }
                if let Some(c) = &s.console {
                    outln!("console:     {c}");
                }
            }
        }
        VmAction::View => {
            let mut cmd = Command::new("virt-viewer");
            cmd.args(["--connect", &args.connect, "--wait", name]);
            return exec(cmd, "virt-viewer (Debian package virt-viewer)");
        }
        VmAction::Console => {
            let mut cmd = Command::new("virsh");
            cmd.args(["-c", &args.connect, "console", name]);
            return exec(cmd, "virsh (Debian package libvirt-clients)");
        }
        VmAction::Memstats { json } => {
            let stats = vm.memstats().map_err(libvirt_error)?;
            if json {
                let map: serde_json::Map<String, serde_json::Value> =
                    stats.into_iter().map(|(k, v)| (k, serde_json::Value::from(v))).collect();
                outln!("{}", serde_json::to_string_pretty(&map)?);
            } else {
                for (k, v) in stats {
                    outln!("{k} {v}");
                }
            }
        }
        VmAction::Setmem { size } => {
            let size: ByteSize = size.parse().map_err(exit::BadInput)?;
            vm.set_memory(size).map_err(libvirt_error)?;
            outln!("{name}: memory set to {size}");
        }
        VmAction::Address => {
            let addrs = vm.addresses().map_err(libvirt_error)?;
            if addrs.is_empty() {
                eprintln!("vmkit: {name} has no known address yet (no DHCP lease, no guest agent, no ARP entry)");
                return Ok(ExitCode::from(exit::FAILED));
            }
            for a in addrs {
                outln!("{a}");
            }
        }
        VmAction::Ssh { user, port, identity, option, args: remote } => {
            let settings = match &args.config {
                Some(file) => {
                    let loaded = load_path(file, false)?;
                    loaded.config.vms.get(name).map(|v| v.ssh.clone())
                }
                None => None,
            };
            let host = match settings.as_ref().and_then(|s| s.host.clone()) {
                Some(h) => h,
                None => match vm.addresses().map_err(libvirt_error)?.first() {
                    Some(a) => a.to_string(),
                    None => {
                        return Err(anyhow::anyhow!(
                            "{name} has no known address (no DHCP lease, guest agent or ARP entry); set \
                             vms.{name}.ssh.host in the config and pass --config"
                        ));
                    }
                },
            };
            let user = user.or_else(|| settings.as_ref().and_then(|s| s.user.clone()));
            let port = port.or(settings.as_ref().map(|s| s.port)).unwrap_or(22);
            let identity = identity.or_else(|| settings.as_ref().and_then(|s| s.identity_file.clone()));
            let target = SshTarget { host: &host, user: user.as_deref(), port, identity: identity.as_deref() };
            let mut cmd = Command::new("ssh");
            cmd.args(ssh_args(&target, &option, &remote));
            return exec(cmd, "ssh (Debian package openssh-client)");
        }
    }
    Ok(ExitCode::from(exit::OK))
}

/// Where `vm ssh` connects.
struct SshTarget<'a> {
    host: &'a str,
    user: Option<&'a str>,
    port: u16,
    identity: Option<&'a std::path::Path>,
}

/// ssh's arguments: `-p PORT [-l USER] [-i KEY] [-o OPT]... HOST [-- ARGS]`.
fn ssh_args(t: &SshTarget<'_>, options: &[String], remote: &[String]) -> Vec<String> {
    let mut v = vec!["-p".to_owned(), t.port.to_string()];
    if let Some(u) = t.user {
        v.push("-l".into());
        v.push(u.to_owned());
    }
    if let Some(i) = t.identity {
        v.push("-i".into());
        v.push(i.display().to_string());
    }
    for o in options {
        v.push("-o".into());
        v.push(o.clone());
    }
    v.push(t.host.to_owned());
    if !remote.is_empty() {
        v.push("--".into());
        v.extend(remote.iter().cloned());
    }
    v
}

/// Replaces this process with `cmd` (so the terminal, signals and exit status are the program's own).
fn exec(mut cmd: Command, what: &str) -> anyhow::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    let err = cmd.exec();
    Err(anyhow::anyhow!("cannot run {what}: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_argv() {
        let t = SshTarget { host: "192.168.122.5", user: None, port: 22, identity: None };
        assert_eq!(ssh_args(&t, &[], &[]), ["-p", "22", "192.168.122.5"]);
        let key = std::path::Path::new("/k/id");
        let t = SshTarget { host: "h", user: Some("alice"), port: 2222, identity: Some(key) };
        assert_eq!(
            ssh_args(&t, &["BatchMode=yes".into()], &["uname".into(), "-a".into()]),
            ["-p", "2222", "-l", "alice", "-i", "/k/id", "-o", "BatchMode=yes", "h", "--", "uname", "-a"]
        );
    }
}
