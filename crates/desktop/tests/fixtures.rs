//! Golden fixtures: every example config under `examples/desktop/` turned into domain XML, snapshot-tested and
//! checked by the real consumer's schema (`virt-xml-validate`, Debian's libvirt).
//!
//! Together the fixtures use every option (see `every_option_is_covered`). Host paths in them (shares, ISOs,
//! kernels) need not exist here, so path checks are off; firmware and virtiofsd paths are Debian's so the
//! snapshots do not depend on the machine.

use std::path::{Path, PathBuf};
use std::process::Command;

use desktop::Format;
use desktop::model::FirmwarePaths;
use desktop::{LoadOptions, domain_xml, load_str};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/desktop")
}

fn opts() -> LoadOptions {
    LoadOptions { check_paths: false, firmware: FirmwarePaths::debian(), virtiofsd: "/usr/lib/qemu/virtiofsd".into() }
}

/// Every fixture file with its text.
fn fixtures() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(examples()).unwrap_or_else(|e| panic!("reading examples/desktop: {e}"));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((name, text));
        }
    }
    out.sort();
    assert!(out.len() >= 7, "fixtures missing: {out:?}");
    out
}

/// (fixture, vm, xml) for every VM of every fixture.
fn domains() -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (name, text) in fixtures() {
        let loaded = load_str(&format!("{name}.toml"), &text, Format::Toml, &opts()).unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.warnings.is_empty(), "{name}: {:?}", loaded.warnings);
        for vm in loaded.config.enabled_vms() {
            out.push((name.clone(), vm.name.clone(), domain_xml(&loaded.config, vm)));
        }
    }
    out
}

#[test]
fn fixtures_match_their_snapshots() {
    for (fixture, vm, xml) in domains() {
        insta::assert_snapshot!(format!("{fixture}-{vm}"), xml);
    }
}

#[test]
fn fixtures_pass_libvirts_schema() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (fixture, vm, xml) in domains() {
        let file = dir.path().join(format!("{fixture}-{vm}.xml"));
        std::fs::write(&file, &xml).unwrap_or_else(|e| panic!("{e}"));
        let out = Command::new("virt-xml-validate")
            .arg(&file)
            .arg("domain")
            .output()
            .unwrap_or_else(|e| panic!("running virt-xml-validate (Debian package libvirt-clients): {e}"));
        assert!(
            out.status.success(),
            "{fixture}/{vm} rejected by virt-xml-validate:\n{}{}\n{xml}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn json_of_a_fixture_gives_the_same_xml() {
    // The Nix module hands the same attribute set over as JSON: the XML must not depend on the format.
    let (_, text) = fixtures().into_iter().find(|(n, _)| n == "looking-glass").unwrap_or_default();
    let toml_value: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let json = serde_json::to_string_pretty(&toml_value).unwrap_or_else(|e| panic!("{e}"));
    let a = load_str("lg.toml", &text, Format::Toml, &opts()).unwrap_or_else(|e| panic!("{e}"));
    let b = load_str("lg.json", &json, Format::Json, &opts()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.config, b.config);
}

#[test]
fn every_option_is_covered() {
    // Every global and per-VM option appears in at least one fixture (so the snapshots and the schema check
    // cover them).
    let all: String = fixtures().into_iter().map(|(_, t)| t).collect::<Vec<_>>().join("\n");
    let options = [
        "enable",
        "profile",
        "hugepages",
        "size",
        "count",
        "defaultStoragePool",
        "defaultStoragePath",
        "gpuPassthrough",
        "pciIDs",
        "cpuVendor",
        "lookingGlass",
        "user",
        "sharedMemoryMB",
        "firmware",
        "ovmf",
        "secureCode",
        "secureVars",
        "code",
        "vars",
        "firewallPorts",
        "spice",
        "vnc",
        "domainType",
        "virtiofsd",
        "defaultNetwork",
        "uuid",
        "macAddress",
        "memory",
        "vcpus",
        "diskSize",
        "storagePool",
        "cpuPinning",
        "display",
        "videoModel",
        "sharedFolders",
        "osType",
        "tpm",
        "secureBoot",
        "autoStart",
        "memballoon",
        "autodeflate",
        "freePageReporting",
        "statsInterval",
        "pciDevices",
        "extraDevices",
        "emulatorPinning",
        "installMedia",
        "directBoot",
        "kernel",
        "initrd",
        "cmdline",
        "network",
        "ssh",
    ];
    for o in options {
        assert!(all.contains(&format!("{o} =")) || all.contains(&format!("{o}=")), "no fixture sets `{o}`");
    }
}
