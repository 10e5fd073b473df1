//! Planning and applying a config against a libvirt daemon, and the day-to-day VM operations.
//!
//! The plan compares what the config wants with what libvirt has and lists the changes: storage pool and disk
//! volumes to create, domains to define or redefine (and why), autostart to flip, managed domains to undefine
//! (only with `--prune`). Apply executes exactly that list, so a second apply finds nothing to do.
//!
//! Which domains vmkit manages is recorded in each domain's `<metadata>` (namespace [`METADATA_NS`]): the hash
//! of the XML vmkit generated (a changed config changes it) and the hash of libvirt's own canonical XML right
//! after the define (an edit made with `virsh edit` changes that). Domains without vmkit's metadata are never
//! touched; a name clash with one is a conflict, and a plan with conflicts is not applied at all.
//!
//! Disks are volumes in a libvirt storage pool (`storagePool`, default `defaultStoragePool`): vmkit creates a
//! missing `<name>.qcow2` volume of `diskSize`, creates the default pool as a directory pool at
//! `defaultStoragePath` when it does not exist, and never deletes or shrinks a volume. Undefining a domain keeps
//! its disk, NVRAM and TPM state.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use virt::connect::Connect;
use virt::domain::Domain as VirtDomain;
use virt::storage_pool::StoragePool;
use virt::storage_vol::StorageVol;
use virt::sys;

use crate::domain::{self, Domain, METADATA_KEY, METADATA_NS, METADATA_PREFIX, VmkitMetadata};
use crate::model::{DesktopConfig, VmConfig};
use crate::values::ByteSize;
use crate::xml;

/// What went wrong talking to libvirt.
#[derive(Debug, thiserror::Error)]
pub enum LibvirtError {
    /// The connection could not be opened.
    #[error("cannot connect to libvirt at {uri}: {message}")]
    Connect {
        /// The URI.
        uri: String,
        /// libvirt's message.
        message: String,
    },
    /// A libvirt call failed.
    #[error("{op} {target}: {message}")]
    Call {
        /// What was being done.
        op: &'static str,
        /// On what.
        target: String,
        /// libvirt's message.
        message: String,
    },
    /// No domain of that name.
    #[error("no VM named \"{0}\" is defined in libvirt")]
    NoSuchVm(String),
    /// The plan has conflicts, so nothing was applied.
    #[error("nothing was changed, because of {} conflict{}:\n  {}", .0.len(), if .0.len() == 1 { "" } else { "s" }, .0.join("\n  "))]
    Conflicts(Vec<String>),
    /// A graceful stop did not finish in time.
    #[error(
        "{name} did not shut down within {secs} s (the guest may ignore the ACPI power button; force-stop pulls the plug)"
    )]
    StopTimeout {
        /// The VM.
        name: String,
        /// The timeout.
        secs: u64,
    },
    /// A request that cannot be honoured (a size above the maximum, a stopped VM).
    #[error("{0}")]
    Refused(String),
}

fn call<T>(op: &'static str, target: &str, r: Result<T, virt::error::Error>) -> Result<T, LibvirtError> {
    r.map_err(|e| LibvirtError::Call { op, target: target.to_owned(), message: e.message().to_owned() })
}

/// What a lookup was for: only libvirt's own "no such …" code for that kind of object means it is absent.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Domain,
    Pool,
    Volume,
    Network,
}

/// `Ok(None)` when libvirt says the object does not exist; any other error (a dropped connection, a denied
/// request) stays an error, so it is never planned as "define it" or reported as "no VM named X".
fn found<T>(
    op: &'static str,
    target: &str,
    kind: Kind,
    r: Result<T, virt::error::Error>,
) -> Result<Option<T>, LibvirtError> {
    use virt::error::ErrorNumber as N;
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            let absent = e.code().is_known_and(|code| {
                matches!(
                    (kind, code),
                    (Kind::Domain, N::NoDomain)
                        | (Kind::Pool, N::NoStoragePool)
                        | (Kind::Volume, N::NoStorageVolume)
                        | (Kind::Network, N::NoNetwork)
                )
            });
            if absent { Ok(None) } else { call(op, target, Err(e)) }
        }
    }
}

/// One change the plan makes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Define the default storage pool as a directory pool, build and start it, autostart on.
    CreatePool {
        /// Pool name.
        pool: String,
        /// Its directory.
        path: PathBuf,
    },
    /// Start an inactive pool.
    StartPool {
        /// Pool name.
        pool: String,
    },
    /// Create a qcow2 volume for a VM's disk.
    CreateVolume {
        /// The VM.
        vm: String,
        /// Pool name.
        pool: String,
        /// Volume name.
        volume: String,
        /// Size.
        #[serde(serialize_with = "display")]
        capacity: ByteSize,
    },
    /// Define a new domain.
    Define {
        /// The VM.
        vm: String,
        /// The XML to define.
        #[serde(skip)]
        xml: String,
    },
    /// Redefine an existing domain.
    Redefine {
        /// The VM.
        vm: String,
        /// Why.
        reason: String,
        /// Running now: the change applies at its next start.
        running: bool,
        /// The XML to define.
        #[serde(skip)]
        xml: String,
    },
    /// Turn autostart on or off.
    Autostart {
        /// The VM.
        vm: String,
        /// The new value.
        enable: bool,
    },
    /// Undefine a managed domain that is no longer in the config (disk, NVRAM and TPM state are kept).
    Undefine {
        /// The domain.
        vm: String,
    },
}

fn display<T: std::fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::CreatePool { pool, path } => write!(f, "create storage pool {pool} (directory {})", path.display()),
            Action::StartPool { pool } => write!(f, "start storage pool {pool}"),
            Action::CreateVolume { vm, pool, volume, capacity } => {
                write!(f, "create volume {pool}/{volume} ({capacity}, qcow2) for {vm}")
            }
            Action::Define { vm, .. } => write!(f, "define {vm}"),
            Action::Redefine { vm, reason, running, .. } => {
                write!(f, "redefine {vm}: {reason}")?;
                if *running {
                    write!(f, " (running: takes effect at its next start)")?;
                }
                Ok(())
            }
            Action::Autostart { vm, enable } => write!(f, "autostart {vm}: {}", if *enable { "on" } else { "off" }),
            Action::Undefine { vm } => write!(f, "undefine {vm} (its disk, NVRAM and TPM state are kept)"),
        }
    }
}

/// What applying a config would change.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Plan {
    /// Changes, in the order apply makes them.
    pub actions: Vec<Action>,
    /// Enabled VMs whose domain is already as configured.
    pub unchanged: Vec<String>,
    /// Managed domains not in the config (or disabled), kept because `--prune` was not given.
    pub kept: Vec<String>,
    /// Problems that stop apply: it changes nothing while there is one.
    pub conflicts: Vec<String>,
    /// Things worth knowing.
    pub notes: Vec<String>,
}

impl Plan {
    /// Whether applying would change nothing.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }
}

/// State of a domain, as vmkit reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VmStatus {
    /// Name.
    pub name: String,
    /// UUID.
    pub uuid: String,
    /// running, shut off, paused, ...
    pub state: String,
    /// Whether vmkit manages it.
    pub managed: bool,
    /// Whether it starts with the host.
    pub autostart: bool,
    /// Whether it is persistent (defined).
    pub persistent: bool,
    /// vCPUs.
    pub vcpus: u32,
    /// Maximum memory in KiB.
    pub max_memory_kib: u64,
    /// Current memory in KiB (the balloon's target when running).
    pub memory_kib: u64,
    /// Graphics listeners when running: "spice://127.0.0.1:5900".
    pub graphics: Vec<String>,
    /// The serial console's pty when running.
    pub console: Option<String>,
}

/// A connection to libvirt.
pub struct Libvirt {
    conn: Connect,
    uri: String,
}

impl std::fmt::Debug for Libvirt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Libvirt").field("uri", &self.uri).finish()
    }
}

/// How an existing domain relates to vmkit.
enum Existing {
    Managed { meta: VmkitMetadata, current_hash: String },
    Unmanaged,
}

impl Libvirt {
    /// Connects to `uri` (e.g. `qemu:///system`, `qemu+ssh://host/system`).
    pub fn connect(uri: &str) -> Result<Self, LibvirtError> {
        // libvirt's default error handler prints every error to stderr; vmkit reports them itself.
        virt::error::clear_error_callback();
        let conn = Connect::open(Some(uri))
            .map_err(|e| LibvirtError::Connect { uri: uri.to_owned(), message: e.message().to_owned() })?;
        Ok(Libvirt { conn, uri: uri.to_owned() })
    }

    /// The URI connected to.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The underlying connection, for callers that need more than vmkit offers.
    pub fn connection(&self) -> &Connect {
        &self.conn
    }

    fn existing(&self, dom: &VirtDomain, name: &str) -> Result<Existing, LibvirtError> {
        let text = call("reading the XML of", name, dom.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE))?;
        let parsed = xml::parse_document(&text).map_err(|e| LibvirtError::Call {
            op: "parsing the XML of",
            target: name.to_owned(),
            message: e.message,
        })?;
        Ok(match VmkitMetadata::from_domain(&parsed) {
            Some(meta) => Existing::Managed { meta, current_hash: domain::domain_hash(&parsed) },
            None => Existing::Unmanaged,
        })
    }

    /// What applying `cfg` would change. Undefines of managed domains missing from the config are planned only
    /// with `prune`.
    pub fn plan(&self, cfg: &DesktopConfig, prune: bool) -> Result<Plan, LibvirtError> {
        let mut plan = Plan::default();
        let vms: Vec<&VmConfig> = cfg.enabled_vms().collect();
        if !cfg.enable {
            plan.notes.push("`enable` is false: no VM is defined".into());
        }

        // Storage: pools first, then volumes.
        let mut pools_ready: BTreeSet<String> = BTreeSet::new();
        let pools: BTreeSet<&str> =
            vms.iter().filter(|vm| vm.disk_size.is_some()).map(|vm| vm.storage_pool.as_str()).collect();
        for pool in pools {
            match found("looking up storage pool", pool, Kind::Pool, self.conn.lookup_storage_pool_by_name(pool))? {
                Some(p) => {
                    if call("checking storage pool", pool, p.is_active())? {
                        pools_ready.insert(pool.to_owned());
                    } else {
                        plan.actions.push(Action::StartPool { pool: pool.to_owned() });
                    }
                }
                None if pool == cfg.default_storage_pool => plan
                    .actions
                    .push(Action::CreatePool { pool: pool.to_owned(), path: cfg.default_storage_path.clone() }),
                None => plan.conflicts.push(format!(
                    "storage pool \"{pool}\" does not exist (vmkit creates only defaultStoragePool \"{}\")",
                    cfg.default_storage_pool
                )),
            }
        }
        for vm in &vms {
            let Some(size) = vm.disk_size else { continue };
            let volume = vm.volume_name();
            let existing = if pools_ready.contains(&vm.storage_pool) {
                let p = call(
                    "looking up storage pool",
                    &vm.storage_pool,
                    self.conn.lookup_storage_pool_by_name(&vm.storage_pool),
                )?;
                call("refreshing storage pool", &vm.storage_pool, p.refresh(0))?;
                found("looking up volume", &volume, Kind::Volume, p.lookup_storage_vol_by_name(&volume))?
            } else {
                None
            };
            match existing {
                None => plan.actions.push(Action::CreateVolume {
                    vm: vm.name.clone(),
                    pool: vm.storage_pool.clone(),
                    volume,
                    capacity: size,
                }),
                Some(v) => {
                    let info = call("reading volume", &volume, v.info())?;
                    if info.capacity < size.0 {
                        plan.notes.push(format!(
                            "{}/{volume} is {} but diskSize is {size}: vmkit never resizes disks (virsh vol-resize, \
                             then grow the file system in the guest)",
                            vm.storage_pool,
                            ByteSize(info.capacity)
                        ));
                    }
                }
            }
        }

        // Networks the VMs join.
        let networks: BTreeSet<&str> = vms.iter().filter_map(|vm| vm.network.as_deref()).collect();
        for net in networks {
            match found("looking up network", net, Kind::Network, self.conn.lookup_network_by_name(net))? {
                Some(n) if !call("checking network", net, n.is_active())? => plan.notes.push(format!(
                    "libvirt network \"{net}\" is not active: VMs on it cannot start (virsh net-start {net}; virsh \
                     net-autostart {net})"
                )),
                Some(_) => {}
                None => plan.conflicts.push(format!("libvirt network \"{net}\" does not exist")),
            }
        }

        // Domains of the config.
        let wanted: BTreeSet<&str> = vms.iter().map(|vm| vm.name.as_str()).collect();
        for vm in &vms {
            let desired = Domain::from_config(cfg, vm).with_metadata();
            let desired_hash = desired.metadata.as_ref().map(|m| m.config_hash.clone()).unwrap_or_default();
            let xml = desired.to_xml();
            match found("looking up domain", &vm.name, Kind::Domain, self.conn.lookup_domain_by_name(&vm.name))? {
                None => {
                    let uuid = vm.uuid.to_string();
                    let by_uuid = self.conn.lookup_domain_by_uuid_string(&uuid);
                    if let Some(other) = found("looking up the domain with UUID", &uuid, Kind::Domain, by_uuid)? {
                        let other_name = call("reading the name of the domain with UUID", &uuid, other.name())?;
                        plan.conflicts
                            .push(format!("{}: UUID {} is already used by domain \"{other_name}\"", vm.name, vm.uuid));
                        continue;
                    }
                    plan.actions.push(Action::Define { vm: vm.name.clone(), xml });
                    if vm.auto_start {
                        plan.actions.push(Action::Autostart { vm: vm.name.clone(), enable: true });
                    }
                }
                Some(dom) => {
                    let uuid = call("reading the UUID of", &vm.name, dom.uuid_string())?;
                    match self.existing(&dom, &vm.name)? {
                        Existing::Unmanaged => {
                            plan.conflicts.push(format!(
                                "{}: a domain of that name exists but vmkit did not define it (no vmkit metadata); \
                                 rename the VM or undefine that domain first",
                                vm.name
                            ));
                            continue;
                        }
                        Existing::Managed { .. } if uuid != vm.uuid.to_string() => {
                            plan.conflicts.push(format!(
                                "{}: the domain has UUID {uuid} but the config says {}; libvirt cannot change a UUID — \
                                 undefine the domain first (its disk stays)",
                                vm.name, vm.uuid
                            ));
                            continue;
                        }
                        Existing::Managed { meta, current_hash } => {
                            let running = call("checking", &vm.name, dom.is_active())?;
                            let reason = if meta.config_hash != desired_hash {
                                Some("the configuration changed")
                            } else if meta.defined_hash.as_deref().is_some_and(|h| h != current_hash) {
                                Some("the domain was changed outside vmkit")
                            } else {
                                None
                            };
                            match reason {
                                Some(r) => plan.actions.push(Action::Redefine {
                                    vm: vm.name.clone(),
                                    reason: r.into(),
                                    running,
                                    xml,
                                }),
                                None => plan.unchanged.push(vm.name.clone()),
                            }
                        }
                    }
                    let autostart = call("reading autostart of", &vm.name, dom.autostart())?;
                    if autostart != vm.auto_start {
                        plan.actions.push(Action::Autostart { vm: vm.name.clone(), enable: vm.auto_start });
                        plan.unchanged.retain(|n| n != &vm.name);
                    }
                }
            }
        }

        // Managed domains the config no longer has.
        let all = call(
            "listing domains on",
            &self.uri,
            self.conn.list_all_domains(sys::VIR_CONNECT_LIST_DOMAINS_PERSISTENT),
        )?;
        let mut leftovers = Vec::new();
        for dom in all {
            let name = call("reading a domain name on", &self.uri, dom.name())?;
            if wanted.contains(name.as_str()) {
                continue;
            }
            if let Existing::Managed { .. } = self.existing(&dom, &name)? {
                leftovers.push((name, call("checking", "domain", dom.is_active())?));
            }
        }
        leftovers.sort();
        for (name, running) in leftovers {
            if !prune {
                plan.kept.push(name);
            } else if running {
                plan.conflicts
                    .push(format!("{name}: it is no longer in the config but is running; stop it before pruning"));
            } else {
                plan.actions.push(Action::Undefine { vm: name });
            }
        }
        Ok(plan)
    }

    /// Applies a plan made by [`Libvirt::plan`]. Refuses (changing nothing) when the plan has conflicts.
    /// Returns the actions done.
    pub fn apply(&self, plan: &Plan) -> Result<Vec<Action>, LibvirtError> {
        if !plan.conflicts.is_empty() {
            return Err(LibvirtError::Conflicts(plan.conflicts.clone()));
        }
        let mut done = Vec::new();
        for action in &plan.actions {
            self.execute(action)?;
            done.push(action.clone());
        }
        Ok(done)
    }

    fn execute(&self, action: &Action) -> Result<(), LibvirtError> {
        match action {
            Action::CreatePool { pool, path } => {
                let p = call(
                    "defining storage pool",
                    pool,
                    self.conn.define_storage_pool_xml(&domain::dir_pool_xml(pool, path), 0),
                )?;
                call("building storage pool", pool, p.build(sys::VIR_STORAGE_POOL_BUILD_NEW))?;
                call("starting storage pool", pool, p.create(0))?;
                call("setting autostart of storage pool", pool, p.set_autostart(true))?;
            }
            Action::StartPool { pool } => {
                let p = call("looking up storage pool", pool, self.conn.lookup_storage_pool_by_name(pool))?;
                call("starting storage pool", pool, p.create(0))?;
            }
            Action::CreateVolume { pool, volume, capacity, .. } => {
                let p: StoragePool =
                    call("looking up storage pool", pool, self.conn.lookup_storage_pool_by_name(pool))?;
                call("refreshing storage pool", pool, p.refresh(0))?;
                // A pool created over an existing directory may already hold the file: keep it.
                if found("looking up volume", volume, Kind::Volume, p.lookup_storage_vol_by_name(volume))?.is_none() {
                    let target = format!("{pool}/{volume}");
                    call(
                        "creating volume",
                        &target,
                        StorageVol::create_xml(&p, &domain::volume_xml(volume, capacity.0), 0),
                    )?;
                }
            }
            Action::Define { vm, xml } | Action::Redefine { vm, xml, .. } => {
                let dom = call("defining", vm, self.conn.define_domain_xml(xml))?;
                self.record_defined(&dom, vm)?;
            }
            Action::Autostart { vm, enable } => {
                let dom = self.lookup(vm)?;
                call("setting autostart of", vm, dom.set_autostart(*enable))?;
            }
            Action::Undefine { vm } => {
                let dom = self.lookup(vm)?;
                let flags = sys::VIR_DOMAIN_UNDEFINE_KEEP_NVRAM
                    | sys::VIR_DOMAIN_UNDEFINE_KEEP_TPM
                    | sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                    | sys::VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                    | sys::VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA;
                call("undefining", vm, dom.undefine_flags(flags))?;
            }
        }
        Ok(())
    }

    /// Stores the hash of libvirt's canonical XML of the freshly defined domain next to the config hash.
    fn record_defined(&self, dom: &VirtDomain, name: &str) -> Result<(), LibvirtError> {
        let text = call("reading the XML of", name, dom.xml_desc(sys::VIR_DOMAIN_XML_INACTIVE))?;
        let parsed = xml::parse_document(&text).map_err(|e| LibvirtError::Call {
            op: "parsing the XML of",
            target: name.to_owned(),
            message: e.message,
        })?;
        let Some(mut meta) = VmkitMetadata::from_domain(&parsed) else {
            return Err(LibvirtError::Call {
                op: "reading vmkit's metadata of",
                target: name.to_owned(),
                message: "libvirt dropped the <metadata> element".into(),
            });
        };
        meta.defined_hash = Some(domain::domain_hash(&parsed));
        let element = xml::Element::new(METADATA_KEY)
            .attr("config", &meta.config_hash)
            .attr_opt("defined", meta.defined_hash.as_ref());
        call(
            "recording vmkit's metadata of",
            name,
            dom.set_metadata(
                i32::try_from(sys::VIR_DOMAIN_METADATA_ELEMENT).unwrap_or(2),
                Some(&xml::render_compact(&element)),
                Some(METADATA_PREFIX),
                Some(METADATA_NS),
                sys::VIR_DOMAIN_AFFECT_CONFIG,
            ),
        )
    }

    fn lookup(&self, name: &str) -> Result<VirtDomain, LibvirtError> {
        found("looking up domain", name, Kind::Domain, self.conn.lookup_domain_by_name(name))?
            .ok_or_else(|| LibvirtError::NoSuchVm(name.to_owned()))
    }

    /// A handle on the domain called `name`.
    pub fn vm(&self, name: &str) -> Result<Vm, LibvirtError> {
        Ok(Vm { dom: self.lookup(name)?, name: name.to_owned() })
    }
}

/// A domain, for the `vm` commands.
pub struct Vm {
    dom: VirtDomain,
    name: String,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm").field("name", &self.name).finish()
    }
}

/// What a `vm` command did, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The change was made.
    Done,
    /// Nothing to do: the VM already was in that state.
    AlreadyThere,
}

/// libvirt's memory statistic tags and the names virsh gives them.
const MEMSTAT_NAMES: [&str; 13] = [
    "swap_in",
    "swap_out",
    "major_fault",
    "minor_fault",
    "unused",
    "available",
    "actual",
    "rss",
    "usable",
    "last_update",
    "disk_caches",
    "hugetlb_pgalloc",
    "hugetlb_pgfail",
];

impl Vm {
    /// The domain name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether it is running (or paused).
    pub fn is_active(&self) -> Result<bool, LibvirtError> {
        call("checking", &self.name, self.dom.is_active())
    }

    /// Starts the VM.
    pub fn start(&self) -> Result<Outcome, LibvirtError> {
        if self.is_active()? {
            return Ok(Outcome::AlreadyThere);
        }
        call("starting", &self.name, self.dom.create())?;
        Ok(Outcome::Done)
    }

    /// Asks the guest to shut down (ACPI power button) and waits up to `timeout` for it to stop; `None` does not
    /// wait.
    pub fn stop(&self, timeout: Option<Duration>) -> Result<Outcome, LibvirtError> {
        if !self.is_active()? {
            return Ok(Outcome::AlreadyThere);
        }
        call("shutting down", &self.name, self.dom.shutdown())?;
        let Some(timeout) = timeout else { return Ok(Outcome::Done) };
        let deadline = Instant::now() + timeout;
        while self.is_active()? {
            if Instant::now() >= deadline {
                return Err(LibvirtError::StopTimeout { name: self.name.clone(), secs: timeout.as_secs() });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(Outcome::Done)
    }

    /// Stops the VM at once (pulls the plug).
    pub fn force_stop(&self) -> Result<Outcome, LibvirtError> {
        if !self.is_active()? {
            return Ok(Outcome::AlreadyThere);
        }
        call("force-stopping", &self.name, self.dom.destroy())?;
        Ok(Outcome::Done)
    }

    /// The VM's state and settings.
    pub fn status(&self) -> Result<VmStatus, LibvirtError> {
        let name = &self.name;
        let info = call("reading the state of", name, self.dom.info())?;
        let state = match call("reading the state of", name, self.dom.state())?.0 {
            virt::enumutil::Enum::Known(s) => state_name(s).to_owned(),
            virt::enumutil::Enum::Unknown(n) => format!("unknown ({n})"),
        };
        let active = call("checking", name, self.dom.is_active())?;
        let live = call("reading the XML of", name, self.dom.xml_desc(0))?;
        let parsed = xml::parse_document(&live).map_err(|e| LibvirtError::Call {
            op: "parsing the XML of",
            target: name.clone(),
            message: e.message,
        })?;
        let mut graphics = Vec::new();
        let mut console = None;
        if active && let Some(devices) = parsed.find("devices") {
            for g in devices.elements().filter(|e| e.name == "graphics") {
                let kind = g.get_attr("type").unwrap_or("?");
                let listen = g
                    .find("listen")
                    .and_then(|l| l.get_attr("address"))
                    .or(g.get_attr("listen"))
                    .unwrap_or("127.0.0.1");
                if let Some(port) = g.get_attr("port").filter(|p| *p != "-1") {
                    graphics.push(format!("{kind}://{listen}:{port}"));
                }
            }
            console = devices.elements().find(|e| e.name == "console" || e.name == "serial").and_then(|c| {
                c.get_attr("tty").map(str::to_owned).or_else(|| c.find("source")?.get_attr("path").map(str::to_owned))
            });
        }
        Ok(VmStatus {
            name: name.clone(),
            uuid: call("reading the UUID of", name, self.dom.uuid_string())?,
            state,
            managed: VmkitMetadata::from_domain(&parsed).is_some(),
            autostart: call("reading autostart of", name, self.dom.autostart())?,
            persistent: call("checking", name, self.dom.is_persistent())?,
            vcpus: info.nr_virt_cpu,
            max_memory_kib: info.max_mem,
            memory_kib: info.memory,
            graphics,
            console,
        })
    }

    /// The guest's memory statistics (KiB, except the fault counters and `last_update`), as `virsh dommemstat`.
    /// Complete only when the guest runs the virtio balloon driver and the balloon has a stats period.
    pub fn memstats(&self) -> Result<Vec<(String, u64)>, LibvirtError> {
        if !self.is_active()? {
            return Err(LibvirtError::Refused(format!("{} is not running", self.name)));
        }
        let stats = call("reading memory statistics of", &self.name, self.dom.memory_stats(0))?;
        Ok(stats
            .into_iter()
            .map(|s| {
                let name = usize::try_from(s.tag)
                    .ok()
                    .and_then(|i| MEMSTAT_NAMES.get(i))
                    .map_or_else(|| format!("tag{}", s.tag), |n| (*n).to_owned());
                (name, s.val)
            })
            .collect())
    }

    /// Sets the running guest's memory (the balloon target). Must not exceed the maximum memory.
    pub fn set_memory(&self, size: ByteSize) -> Result<(), LibvirtError> {
        if !self.is_active()? {
            return Err(LibvirtError::Refused(format!(
                "{} is not running: setmem changes a running guest's memory (the config's `memory` sets it at boot)",
                self.name
            )));
        }
        let max = call("reading the maximum memory of", &self.name, self.dom.max_memory())?;
        let kib = size.kib_ceil();
        if kib > max {
            return Err(LibvirtError::Refused(format!(
                "{size} is more than {}'s maximum memory {}",
                self.name,
                ByteSize(max * 1024)
            )));
        }
        call("setting the memory of", &self.name, self.dom.set_memory_flags(kib, sys::VIR_DOMAIN_AFFECT_LIVE))?;
        Ok(())
    }

    /// The guest's IP addresses, from libvirt's DHCP leases, else the guest agent, else the host's ARP table;
    /// IPv4 first.
    pub fn addresses(&self) -> Result<Vec<IpAddr>, LibvirtError> {
        if !self.is_active()? {
            return Err(LibvirtError::Refused(format!("{} is not running", self.name)));
        }
        for source in [
            sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
            sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
            sys::VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP,
        ] {
            let Ok(ifaces) = self.dom.interface_addresses(source, 0) else { continue };
            let mut addrs: Vec<IpAddr> = ifaces
                .iter()
                .filter(|i| i.name != "lo")
                .flat_map(|i| i.addrs.iter())
                .filter_map(|a| a.addr.parse::<IpAddr>().ok())
                .filter(|a| !a.is_loopback())
                .collect();
            if !addrs.is_empty() {
                addrs.sort_by_key(|a| (a.is_ipv6(), *a));
                addrs.dedup();
                return Ok(addrs);
            }
        }
        Ok(Vec::new())
    }
}

fn state_name(s: virt::domain::DomainState) -> &'static str {
    use virt::domain::DomainState as S;
    match s {
        S::NoState => "no state",
        S::Running => "running",
        S::Blocked => "blocked",
        S::Paused => "paused",
        S::Shutdown => "shutting down",
        S::Shutoff => "shut off",
        S::Crashed => "crashed",
        S::PMSuspended => "suspended",
    }
}
