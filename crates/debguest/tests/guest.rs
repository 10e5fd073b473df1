//! The busybox guest built from the host's Debian packages: what goes in the initramfs, the exact versions
//! recorded, and the caching (a second build is a lookup; a build from cached packages needs no download).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use debguest::debian::{Apt, sha256_file};
use debguest::initramfs::{BusyboxGuest, GuestSpec};

/// The testbed's cache (shared with the tests that boot the guest), so the packages download once per checkout.
fn testbed_cache() -> PathBuf {
    if let Some(dir) = std::env::var_os("VMKIT_TESTBED_CACHE").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .join("testbed-cache")
}

fn candidate(package: &str) -> String {
    let out = Command::new("apt-cache").args(["policy", package]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines().find_map(|l| l.trim().strip_prefix("Candidate: ")).unwrap().to_owned()
}

#[test]
fn e2e_busybox_guest_contents_versions_and_cache() {
    let shared = testbed_cache();
    let guest = BusyboxGuest::build(&GuestSpec::default(), &shared).unwrap();

    // Exact versions are the ones apt would install, and the outputs match their recorded hashes.
    let m = &guest.manifest;
    assert_eq!(m.busybox_package.version, candidate("busybox-static"));
    assert!(m.kernel_package.name.starts_with("linux-image-"), "{}", m.kernel_package.name);
    assert_eq!(m.kernel_package.version, candidate(&m.kernel_package.name));
    assert_eq!(sha256_file(&guest.kernel).unwrap(), m.kernel_sha256);
    assert_eq!(sha256_file(&guest.initrd).unwrap(), m.initrd_sha256);
    for module in ["button", "evdev", "virtio_pci", "virtio", "virtio_ring"] {
        assert!(m.modules.iter().any(|x| x == module), "{module} missing from {:?}", m.modules);
    }
    let pos = |name: &str| m.modules.iter().position(|x| x == name).unwrap();
    assert!(pos("virtio") < pos("virtio_pci"), "dependencies load first: {:?}", m.modules);

    // The initramfs, listed by GNU cpio.
    let mut child =
        Command::new("cpio").args(["-t", "--quiet"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&std::fs::read(&guest.initrd).unwrap()).unwrap();
    let listing = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    for path in ["init", "bin/busybox", "dev/console", "etc/inittab", "etc/acpi/PWRF/00000080", "etc/vmkit/modules"] {
        assert!(listing.lines().any(|l| l == path), "{path} not in the initramfs:\n{listing}");
    }
    for module in &m.modules {
        let path = format!("lib/modules/vmkit/{module}.ko");
        assert!(listing.lines().any(|l| l == path), "{path} not in the initramfs");
    }

    // Build again in a fresh cache whose package directory already holds the .debs, with an apt-get that always
    // fails: it builds (no download needed), then the next build is a cache hit.
    let fresh = tempfile::tempdir().unwrap();
    let debs = fresh.path().join("debs");
    std::fs::create_dir_all(&debs).unwrap();
    for pkg in [&m.kernel_package, &m.busybox_package] {
        let name = pkg.file_name();
        std::fs::hard_link(shared.join("debs").join(&name), debs.join(&name))
            .or_else(|_| std::fs::copy(shared.join("debs").join(&name), debs.join(&name)).map(drop))
            .unwrap();
    }
    let offline = Apt::new(fresh.path()).with_apt_get("/bin/false");
    let rebuilt = BusyboxGuest::build_with(&GuestSpec::default(), fresh.path(), &offline).unwrap();
    assert!(!rebuilt.cache_hit);
    assert_eq!(rebuilt.manifest, guest.manifest, "same inputs, same outputs");
    let again = BusyboxGuest::build_with(&GuestSpec::default(), fresh.path(), &offline).unwrap();
    assert!(again.cache_hit);
    assert_eq!(again.dir, rebuilt.dir);

    // A module that does not exist is an error naming it.
    let spec = GuestSpec { modules: vec!["no_such_module".into()], ..GuestSpec::default() };
    let err = BusyboxGuest::build_with(&spec, fresh.path(), &offline).unwrap_err().to_string();
    assert!(err.contains("no_such_module"), "{err}");
}

#[test]
fn unknown_packages_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let apt = Apt::new(dir.path());
    let err = apt.resolve("vmkit-no-such-package").unwrap_err().to_string();
    assert!(err.contains("vmkit-no-such-package"), "{err}");
    let err = apt.resolve("--option=x").unwrap_err().to_string();
    assert!(err.contains("not a valid Debian package name"), "{err}");
}

#[test]
fn resolutions_are_remembered_while_apt_state_holds() {
    let dir = tempfile::tempdir().unwrap();
    let apt = Apt::new(dir.path());
    let real = apt.resolve("busybox-static").unwrap();
    let memo = dir.path().join("debs/resolved/busybox-static.json");
    let mut record: serde_json::Value = serde_json::from_slice(&std::fs::read(&memo).unwrap()).unwrap();

    // A remembered answer is used as long as the fingerprint matches...
    record["package"]["version"] = "0:remembered".into();
    std::fs::write(&memo, serde_json::to_vec(&record).unwrap()).unwrap();
    assert_eq!(apt.resolve("busybox-static").unwrap().version, "0:remembered");

    // ...and apt is asked again once it does not (as after `apt-get update`).
    record["fingerprint"] = "stale".into();
    std::fs::write(&memo, serde_json::to_vec(&record).unwrap()).unwrap();
    assert_eq!(apt.resolve("busybox-static").unwrap(), real);
}

/// `raw` compressed by a real command-line tool with the given arguments.
fn compress(tool: &str, args: &[&str], raw: &[u8]) -> Vec<u8> {
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool} (Debian packages xz-utils, zstd): {e}"));
    child.stdin.take().unwrap().write_all(raw).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{tool} failed");
    out.stdout
}

/// Kernel packages that compress their modules (Debian 13 with xz, Ubuntu with zstd) are read like Debian 12's
/// plain ones: real modules from the host's kernel package, compressed the way the kernel's build does it, come
/// back byte for byte with their `.modinfo`.
#[test]
fn e2e_real_modules_compressed_with_xz_or_zstd_read_back() {
    let apt = Apt::new(&testbed_cache());
    let pkg = apt.resolve_through("linux-image-amd64", "linux-image-").unwrap();
    let deb = apt.fetch(&pkg).unwrap();
    let mut paths = Vec::new();
    deb.for_each_member(|path, _, _, _| {
        if ["/virtio_net.ko", "/virtio_ring.ko", "/button.ko"].iter().any(|m| path.ends_with(m)) {
            paths.push(path.to_owned());
        }
        Ok(debguest::debian::Flow::Continue)
    })
    .unwrap();
    assert_eq!(paths.len(), 3, "{paths:?}");
    for path in paths {
        let elf = deb.read_member(&path, 64 << 20).unwrap();
        let name = debguest::kmod::modinfo(&elf).unwrap().name;
        for (suffix, packed) in [
            ("xz", compress("xz", &["--check=crc32", "--lzma2=dict=1MiB", "-c"], &elf)),
            ("zst", compress("zstd", &["-T0", "-c", "-q"], &elf)),
        ] {
            let file = format!("{path}.{suffix}");
            assert!(debguest::kmod::is_module_file(&file));
            let back = debguest::kmod::module_elf(&file, packed, 64 << 20).unwrap();
            assert!(back == elf, "{file} does not decompress to the module");
            assert_eq!(debguest::kmod::modinfo(&back).unwrap().name, name);
        }
    }
}
