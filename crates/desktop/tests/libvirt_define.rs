//! Every golden fixture, applied to a real libvirt daemon (started by hand if it is not running).
//!
//! The fixtures describe hardware this machine lacks (a GPU at 0000:0b:00.0, 1 GiB huge pages, OVMF with Secure
//! Boot under KVM), so their domains are defined only, never started: libvirt checks the XML, its schema, the
//! firmware and the referenced pools and networks at define time; devices and huge pages are only needed at
//! start. Each test run renames the VMs and uses its own storage pool in a temporary directory, so parallel runs
//! and the host's own domains are never touched; everything is removed afterwards.

use std::path::{Path, PathBuf};
use std::time::Duration;

use desktop::Format;
use desktop::libvirt::{Action, Libvirt};
use desktop::model::{DesktopConfig, DomainType, FirmwarePaths};
use desktop::values::{MacAddr, Uuid};
use desktop::{LoadOptions, load_str};
use testbed::libvirt::{Cleanup, SYSTEM_URI, ensure_libvirtd, unique_name, virsh};

fn load_fixture(path: &Path) -> DesktopConfig {
    let opts = LoadOptions {
        check_paths: false,
        firmware: FirmwarePaths::debian(),
        virtiofsd: "/usr/lib/qemu/virtiofsd".into(),
    };
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    load_str(&path.display().to_string(), &text, Format::Toml, &opts).unwrap_or_else(|e| panic!("{e}")).config
}

/// Gives every VM a name, UUID and MAC of its own and puts all disks into the test's pool.
fn isolate(cfg: &mut DesktopConfig, tag: &str, pool: &str, pool_dir: &Path, kvm: bool) {
    cfg.default_storage_pool = pool.to_owned();
    cfg.default_storage_path = pool_dir.to_owned();
    if !kvm {
        cfg.domain_type = DomainType::Qemu;
    }
    let vms = std::mem::take(&mut cfg.vms);
    for (name, mut vm) in vms {
        let new = format!("{tag}-{name}");
        vm.name = new.clone();
        vm.uuid = Uuid::derived(&new);
        vm.mac_address = MacAddr::derived(&new);
        vm.storage_pool = pool.to_owned();
        cfg.vms.insert(new, vm);
    }
}

#[test]
fn every_fixture_is_defined_by_libvirtd_and_a_second_apply_changes_nothing() {
    ensure_libvirtd().unwrap_or_else(|e| panic!("{e:#}"));
    testbed::libvirt::ensure_network("default").unwrap_or_else(|e| panic!("{e:#}"));
    let caps = virsh(&["capabilities"], Duration::from_secs(60)).unwrap_or_default();
    let kvm = caps.contains("<domain type='kvm'");

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let tag = unique_name("vmkit-fx");
    // Declared after `dir`, so it is dropped first: the domains go before their files.
    let mut cleanup = Cleanup { domains: Vec::new(), pool: tag.clone() };
    let pool_dir: PathBuf = dir.path().join("pool");

    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/desktop");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&examples)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 7);

    let lv = Libvirt::connect(SYSTEM_URI).unwrap_or_else(|e| panic!("{e}"));
    let mut defined = 0;
    for file in &files {
        let mut cfg = load_fixture(file);
        isolate(&mut cfg, &tag, &tag, &pool_dir, kvm);
        cleanup.domains.extend(cfg.vms.keys().cloned());

        let plan = lv.plan(&cfg, false).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        assert!(plan.conflicts.is_empty(), "{}: {:?}", file.display(), plan.conflicts);
        let done = lv.apply(&plan).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for vm in cfg.enabled_vms() {
            assert!(
                done.iter().any(|a| matches!(a, Action::Define { vm: v, .. } if v == &vm.name)),
                "{}: {} not defined: {done:?}",
                file.display(),
                vm.name
            );
            let status = lv.vm(&vm.name).and_then(|v| v.status()).unwrap_or_else(|e| panic!("{e}"));
            assert!(status.managed && status.persistent, "{status:?}");
            assert_eq!(status.autostart, vm.auto_start, "{}", vm.name);
            assert_eq!(status.uuid, vm.uuid.to_string());
            if let Some(size) = vm.disk_size {
                let vol = virsh(&["vol-info", "--pool", &tag, &vm.volume_name(), "--bytes"], Duration::from_secs(60))
                    .unwrap_or_else(|e| panic!("{e}"));
                assert!(vol.contains(&format!("Capacity:       {} bytes", size.0)), "{vol}");
            }
            defined += 1;
        }

        let again = lv.plan(&cfg, false).unwrap_or_else(|e| panic!("{e}"));
        assert!(again.is_empty(), "{}: second plan not empty: {:?}", file.display(), again.actions);
        assert_eq!(again.unchanged.len(), cfg.enabled_vms().count());
    }
    assert!(defined >= 8, "only {defined} domains defined");

    // An edit made outside vmkit is noticed and undone by the next apply.
    let name = format!("{tag}-server");
    let xml = virsh(&["dumpxml", "--inactive", &name], Duration::from_secs(60)).unwrap_or_default();
    let edited = xml.replace("<on_crash>destroy</on_crash>", "<on_crash>restart</on_crash>");
    assert_ne!(xml, edited, "on_crash element not found in:\n{xml}");
    let file = dir.path().join("edited.xml");
    std::fs::write(&file, edited).unwrap_or_else(|e| panic!("{e}"));
    virsh(&["define", &file.display().to_string()], Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = load_fixture(&examples.join("vnc-only.toml"));
    isolate(&mut cfg, &tag, &tag, &pool_dir, kvm);
    let plan = lv.plan(&cfg, false).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(plan.actions.as_slice(), [Action::Redefine { reason, .. }] if reason.contains("outside vmkit")),
        "{:?}",
        plan.actions
    );
    lv.apply(&plan).unwrap_or_else(|e| panic!("{e}"));
    assert!(lv.plan(&cfg, false).unwrap_or_else(|e| panic!("{e}")).is_empty());
}

#[test]
fn a_domain_vmkit_did_not_define_is_a_conflict_and_nothing_is_applied() {
    ensure_libvirtd().unwrap_or_else(|e| panic!("{e:#}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let name = unique_name("vmkit-foreign");
    let other = unique_name("vmkit-new");
    let cleanup = Cleanup { domains: vec![name.clone(), other.clone()], pool: unique_name("vmkit-nopool") };
    let foreign = format!(
        "<domain type='qemu'><name>{name}</name><memory unit='MiB'>64</memory><os><type arch='x86_64'>hvm</type></os></domain>"
    );
    let file = dir.path().join("foreign.xml");
    std::fs::write(&file, foreign).unwrap_or_else(|e| panic!("{e}"));
    virsh(&["define", &file.display().to_string()], Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));

    let text = format!(
        "enable = true\ndomainType = \"qemu\"\n[vms.{name}]\nmemory = \"64M\"\nnetwork = \"none\"\n\
         [vms.{other}]\nmemory = \"64M\"\nnetwork = \"none\"\n"
    );
    let opts = LoadOptions {
        check_paths: false,
        firmware: FirmwarePaths::debian(),
        virtiofsd: "/usr/lib/qemu/virtiofsd".into(),
    };
    let cfg = load_str("c.toml", &text, Format::Toml, &opts).unwrap_or_else(|e| panic!("{e}")).config;
    let lv = Libvirt::connect(SYSTEM_URI).unwrap_or_else(|e| panic!("{e}"));
    let plan = lv.plan(&cfg, true).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(plan.conflicts.len(), 1, "{plan:?}");
    assert!(plan.conflicts[0].contains("vmkit did not define it"), "{plan:?}");
    let err = lv.apply(&plan).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("nothing was changed, because of 1 conflict"), "{err}");
    // The other VM of the same plan was not defined either.
    assert!(lv.vm(&other).is_err());
    drop(cleanup);
}
