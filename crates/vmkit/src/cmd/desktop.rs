//! `vmkit desktop`: declare desktop VMs in one file and have libvirt run them.
//!
//! Subcommands map onto the `desktop` crate: `xml` prints the domain XML, `plan` shows what `apply` would change
//! (and the host settings the VMs need), `apply` makes libvirt match the file, `host-plan` lists kernel
//! parameters, sysctl and mounts and checks the running host, `scripts` writes the `vm-<name>` launchers.
//! Config mistakes are listed as FILE:LINE:COL and exit 2 before anything is changed.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use desktop::host::{self, HostPlan, KvmState, Status};
use desktop::libvirt::{Action, Libvirt, LibvirtError, Plan};
use desktop::{LoadError, LoadOptions, Loaded};

use crate::exit;
use crate::output::{out, outln};

/// The libvirt URI used when `--connect` is not given.
pub const DEFAULT_URI: &str = "qemu:///system";

/// Declarative desktop VMs on libvirt: plan, apply, XML, host settings, launcher scripts.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(Debug, clap::Subcommand)]
enum Sub {
    /// Show what `apply` would change (define, redefine, undefine, volumes, autostart) and the host settings the
    /// VMs need. Exit 0, or 1 when the plan has conflicts.
    Plan(PlanArgs),
    /// Make libvirt match the file: create missing volumes, define or redefine domains, set autostart; with
    /// --prune undefine managed VMs that left the file (their disks stay). A second apply changes nothing.
    Apply(PlanArgs),
    /// Print the libvirt domain XML of one VM, or of every enabled VM (separated by blank lines).
    Xml(XmlArgs),
    /// Kernel parameters, sysctl, mounts and files the host needs, and checks of the running host (free huge
    /// pages, IOMMU groups, KVM, OVMF, swtpm, virtiofsd). Exit 1 when a check fails.
    HostPlan(HostPlanArgs),
    /// Write the vm-NAME launcher scripts into DIR (they call `vmkit vm NAME ...`).
    Scripts(ScriptsArgs),
    /// Every config option with its type, default and description; --json prints the schema the NixOS module
    /// is built from.
    Schema(SchemaArgs),
}

#[derive(Debug, clap::Args)]
struct SchemaArgs {
    /// Print the schema as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// The config: the `virtualisation.desktopVMs` attribute set as TOML (or JSON for *.json).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Do not require shared folders, install media and kernels to exist on this machine.
    #[arg(long)]
    skip_path_checks: bool,
}

#[derive(Debug, clap::Args)]
struct PlanArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// libvirt URI.
    #[arg(long, value_name = "URI", default_value = DEFAULT_URI)]
    connect: String,
    /// Also undefine VMs vmkit manages that are no longer in the file (or are disabled).
    #[arg(long)]
    prune: bool,
    /// Also check every domain's XML against libvirt's schema (one xmllint run).
    #[arg(long)]
    validate: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct XmlArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Only this VM.
    #[arg(value_name = "VM")]
    vm: Option<String>,
    /// Check the XML against libvirt's schema too (exit 1 when it does not validate).
    #[arg(long)]
    validate: bool,
}

#[derive(Debug, clap::Args)]
struct HostPlanArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Do not boot the KVM probe; report /dev/kvm's presence only.
    #[arg(long)]
    no_kvm_probe: bool,
    /// Check the host as seen under this directory instead of / (for tests).
    #[arg(long, value_name = "DIR", default_value = "/", hide = true)]
    host_root: PathBuf,
}

#[derive(Debug, clap::Args)]
struct ScriptsArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Where to write the scripts.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// libvirt URI the scripts use.
    #[arg(long, value_name = "URI", default_value = DEFAULT_URI)]
    connect: String,
    /// The vmkit binary the scripts run [default: this one].
    #[arg(long, value_name = "PATH")]
    vmkit: Option<PathBuf>,
}

/// Runs `vmkit desktop`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Sub::Plan(a) => plan(&a, false),
        Sub::Apply(a) => plan(&a, true),
        Sub::Xml(a) => xml(&a),
        Sub::HostPlan(a) => host_plan(&a),
        Sub::Scripts(a) => scripts(&a),
        Sub::Schema(a) => schema(&a),
    }
}

/// Loads the config; mistakes become a `BadInput` listing every one, warnings go to stderr.
fn load(config: &ConfigArgs) -> anyhow::Result<Loaded> {
    load_path(&config.file, !config.skip_path_checks)
}

/// Loads a config file (see [`load`]).
pub fn load_path(file: &Path, check_paths: bool) -> anyhow::Result<Loaded> {
    let opts = LoadOptions { check_paths, ..LoadOptions::for_host() };
    match desktop::load_file(file, &opts) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            Ok(loaded)
        }
        Err(LoadError::Config(e)) => Err(exit::BadInput(e.to_string()).into()),
        Err(e @ LoadError::Read { .. }) => Err(exit::BadInput(e.to_string()).into()),
    }
}

/// Turns a libvirt error into the right exit code: unknown VMs and refused requests are bad input.
pub fn libvirt_error(e: LibvirtError) -> anyhow::Error {
    match e {
        LibvirtError::NoSuchVm(_) | LibvirtError::Refused(_) => exit::BadInput(e.to_string()).into(),
        other => other.into(),
    }
}

fn validate(domains: &[(String, String)]) -> anyhow::Result<bool> {
    let verdicts = desktop::schema::validate_domains(domains, Path::new(desktop::schema::DEFAULT_SCHEMA))?;
    let mut ok = true;
    for (name, v) in verdicts {
        if let Err(msg) = v {
            eprintln!("vmkit: {name}: the domain XML does not validate against libvirt's schema: {msg}");
            ok = false;
        }
    }
    Ok(ok)
}

fn plan(args: &PlanArgs, apply: bool) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.config)?;
    let cfg = &loaded.config;
    if args.validate {
        let domains: Vec<(String, String)> =
            cfg.enabled_vms().map(|vm| (vm.name.clone(), desktop::domain_xml(cfg, vm))).collect();
        if !validate(&domains)? {
            return Ok(ExitCode::from(exit::FAILED));
        }
    }
    let lv = Libvirt::connect(&args.connect)?;
    let plan = lv.plan(cfg, args.prune)?;
    let host = HostPlan::for_config(cfg, host::detect_cpu_vendor(Path::new("/")));

    if !apply {
        if args.json {
            let out =
                serde_json::json!({ "uri": args.connect, "plan": plan, "host": host, "warnings": loaded.warnings });
            outln!("{}", serde_json::to_string_pretty(&out)?);
        } else {
            out!("{}", render_plan(&args.connect, &plan, &host));
        }
        return Ok(ExitCode::from(if plan.conflicts.is_empty() { exit::OK } else { exit::FAILED }));
    }

    let done = lv.apply(&plan)?;
    if args.json {
        let out = serde_json::json!({ "uri": args.connect, "applied": done, "unchanged": plan.unchanged, "kept": plan.kept, "notes": plan.notes });
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let mut out = String::new();
        if done.is_empty() {
            let _ = writeln!(out, "No changes: {} VM(s) already as configured.", plan.unchanged.len());
        }
        for a in &done {
            let _ = writeln!(out, "done: {a}");
        }
        render_tail(&mut out, &plan);
        out!("{out}");
    }
    Ok(ExitCode::from(exit::OK))
}

fn symbol(a: &Action) -> char {
    match a {
        Action::CreatePool { .. } | Action::StartPool { .. } | Action::CreateVolume { .. } | Action::Define { .. } => {
            '+'
        }
        Action::Redefine { .. } | Action::Autostart { .. } => '~',
        Action::Undefine { .. } => '-',
    }
}

fn render_tail(out: &mut String, plan: &Plan) {
    if !plan.kept.is_empty() {
        let _ = writeln!(
            out,
            "kept (managed by vmkit but not in the file; --prune undefines them): {}",
            plan.kept.join(", ")
        );
    }
    for n in &plan.notes {
        let _ = writeln!(out, "note: {n}");
    }
}

fn render_plan(uri: &str, plan: &Plan, host: &HostPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Plan for {uri}:");
    if plan.actions.is_empty() {
        let _ = writeln!(out, "  no changes");
    }
    for a in &plan.actions {
        let _ = writeln!(out, "  {} {a}", symbol(a));
    }
    if !plan.unchanged.is_empty() {
        let _ = writeln!(out, "  = unchanged: {}", plan.unchanged.join(", "));
    }
    for c in &plan.conflicts {
        let _ = writeln!(out, "  ! conflict: {c}");
    }
    render_tail(&mut out, plan);
    if !host.is_empty() || !host.notes.is_empty() {
        let _ = writeln!(out, "\nHost settings (`vmkit desktop host-plan FILE` checks them):");
        out.push_str(&render_host(host));
    }
    out
}

fn render_host(host: &HostPlan) -> String {
    let mut out = String::new();
    if !host.kernel_params.is_empty() {
        let all: Vec<String> = host.kernel_params.iter().map(ToString::to_string).collect();
        let _ = writeln!(out, "  kernel command line: {}", all.join(" "));
    }
    for s in &host.kernel_params {
        let _ = writeln!(out, "  kernel parameter  {s:<28} # {}", s.why);
    }
    for s in &host.sysctl {
        let _ = writeln!(out, "  sysctl            {} = {:<14} # {}", s.key, s.value, s.why);
    }
    for m in &host.mounts {
        let _ = writeln!(
            out,
            "  mount (fstab)     {} {} {} {} 0 0   # {}",
            m.what,
            m.target.display(),
            m.fstype,
            m.options,
            m.why
        );
    }
    for t in &host.tmpfiles {
        let _ = writeln!(out, "  tmpfiles.d        {} {}   # {}", t.key, t.value, t.why);
    }
    for n in &host.notes {
        let _ = writeln!(out, "  note: {n}");
    }
    out
}

fn xml(args: &XmlArgs) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.config)?;
    let cfg = &loaded.config;
    let vms: Vec<&desktop::VmConfig> = match &args.vm {
        Some(name) => vec![cfg.vms.get(name).ok_or_else(|| {
            let known: Vec<&str> = cfg.vms.keys().map(String::as_str).collect();
            exit::BadInput(format!("no VM \"{name}\" in {} (it has: {})", args.config.file.display(), known.join(", ")))
        })?],
        None => cfg.enabled_vms().collect(),
    };
    let domains: Vec<(String, String)> = vms.iter().map(|vm| (vm.name.clone(), desktop::domain_xml(cfg, vm))).collect();
    let texts: Vec<&str> = domains.iter().map(|(_, x)| x.as_str()).collect();
    out!("{}", texts.join("\n"));
    if args.validate && !validate(&domains)? {
        return Ok(ExitCode::from(exit::FAILED));
    }
    Ok(ExitCode::from(exit::OK))
}

fn host_plan(args: &HostPlanArgs) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.config)?;
    let cfg = &loaded.config;
    let root = args.host_root.as_path();
    let plan = HostPlan::for_config(cfg, host::detect_cpu_vendor(root));
    let kvm = if cfg.domain_type == desktop::model::DomainType::Qemu {
        KvmState::PresentNotProbed
    } else if !root.join("dev/kvm").exists() {
        KvmState::Absent
    } else if args.no_kvm_probe || root != Path::new("/") {
        KvmState::PresentNotProbed
    } else {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the runtime")?;
        rt.block_on(host::probe_kvm())
    };
    let checks = host::preflight(cfg, root, &kvm);
    let failed = checks.iter().any(|c| c.status == Status::Fail);
    if args.json {
        let out = serde_json::json!({ "host": plan, "checks": checks, "warnings": loaded.warnings });
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let mut out = String::new();
        if plan.is_empty() && plan.notes.is_empty() {
            let _ = writeln!(out, "The host needs no kernel parameters, sysctl settings or mounts for these VMs.");
        } else {
            let _ = writeln!(out, "The host needs:");
            out.push_str(&render_host(&plan));
        }
        let _ = writeln!(out, "\nChecks of this host:");
        for c in &checks {
            let _ = writeln!(out, "  {:<4}  {}: {}", c.status, c.name, c.detail);
        }
        out!("{out}");
    }
    Ok(ExitCode::from(if failed { exit::FAILED } else { exit::OK }))
}

fn scripts(args: &ScriptsArgs) -> anyhow::Result<ExitCode> {
    let loaded = load(&args.config)?;
    let program = match &args.vmkit {
        Some(p) => p.clone(),
        None => std::env::current_exe().context("finding the vmkit binary (give --vmkit PATH)")?,
    };
    let config = std::path::absolute(&args.config.file)
        .with_context(|| format!("making {} absolute", args.config.file.display()))?;
    let written = desktop::scripts::write_launchers(&loaded.config, &args.dir, &program, &args.connect, Some(&config))
        .with_context(|| format!("writing launchers into {}", args.dir.display()))?;
    for p in &written.written {
        outln!("wrote {}", p.display());
    }
    for p in &written.removed {
        outln!("removed {}", p.display());
    }
    Ok(ExitCode::from(exit::OK))
}

fn schema(args: &SchemaArgs) -> anyhow::Result<ExitCode> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(&desktop::options::schema_json())?);
    } else {
        let mut out = String::new();
        render_options(&mut out, desktop::options::OPTIONS, "");
        print!("{out}");
    }
    Ok(ExitCode::from(exit::OK))
}

fn type_text(ty: &desktop::options::Ty) -> String {
    use desktop::options::Ty;
    match ty {
        Ty::Bool => "bool".into(),
        Ty::Int { min, max } => format!("integer {min}..{max}"),
        Ty::Text => "string".into(),
        Ty::Str(f) => f.name.to_owned(),
        Ty::Enum(values) => values.iter().map(|v| format!("\"{v}\"")).collect::<Vec<_>>().join(" | "),
        Ty::List(of) => format!("list of {}", type_text(of)),
        Ty::OneOrList(of) => format!("{0} or list of {0}", type_text(of)),
        Ty::Attrs { key, of } => format!("table {} = {}", key.name, type_text(of)),
        Ty::Submodule(_) => "table".into(),
    }
}

/// One line per option: path, type, default, then the description.
fn render_options(out: &mut String, opts: &[desktop::options::Opt], prefix: &str) {
    use desktop::options::{Default, Ty};
    for o in opts {
        let path = format!("{prefix}{}", o.name);
        let default = match o.default {
            Default::Bool(b) => b.to_string(),
            Default::Int(n) => n.to_string(),
            Default::Str(s) => format!("\"{s}\""),
            Default::EmptyList => "[]".into(),
            Default::EmptyAttrs => "{}".into(),
            Default::Nested => "(per option)".into(),
            Default::Unset(text) => format!("unset: {text}"),
            Default::Required => "required".into(),
        };
        let ext = if o.extension { " [vmkit extension]" } else { "" };
        let _ = writeln!(out, "{path}  ({}; default {default}){ext}\n    {}", type_text(&o.ty), o.doc);
        match o.ty {
            Ty::Submodule(sub) => render_options(out, sub, &format!("{path}.")),
            Ty::Attrs { of: Ty::Submodule(sub), .. } => render_options(out, sub, &format!("{path}.<name>.")),
            _ => {}
        }
    }
}
