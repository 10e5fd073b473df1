//! `image prepare` for a macOS recipe, end to end without Apple's servers: a stand-in OpenCore release (a zip with
//! OpenCorePkg's layout, made by Debian's `zip`, whose `BOOTx64.efi` is `testbed::efi`'s GRUB stand-in), two kext
//! releases the test zips (a top-level bundle, and bundles under `Kexts/` of which the recipe takes one) and a
//! recovery image written by the test (`testbed_guests::udif`). The prepared directory is checked from outside: the boot
//! disk by `sgdisk`, `fsck.fat` and mtools (the kexts unpacked byte for byte into `EFI/OC/Kexts`), its
//! `config.plist` by Python's `plistlib` (the identity; `Kernel.Add` with Lilu before the plug-in that links
//! against it), the installer disk against
//! the test's bytes, the system disk by `qemu-img`; then the directory's own `install` script is run (QEMU with
//! the full macOS machine profile, under TCG) and OVMF boots the stand-in from the boot disk. A second prepare
//! with `--replace` keeps the Mac identity; without it the directory is refused; without `--allow-tcg` on a
//! host with no usable KVM nothing is made at all.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use images::build::BuildError;
use images::macos::bootdisk::{ESP_FIRST_LBA, SECTOR};
use images::macos::prepare::{PrepareOptions, names, prepare};
use images::recipe::{Recipe, Source};

const MARKER: &str = "VMKIT-OPENCORE-STAND-IN";

fn run(cmd: &mut Command) -> String {
    testbed::process::run(cmd.env("MTOOLS_SKIP_CHECK", "1")).unwrap_or_else(|e| panic!("{e:#}"))
}

/// A kext's `Info.plist`: its identifier, executable and the libraries it links against.
fn info_plist(id: &str, exe: &str, libs: &[&str]) -> String {
    let libs: String = libs.iter().map(|l| format!("<key>{l}</key><string>1.0</string>")).collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\"><dict>\
         <key>CFBundleIdentifier</key><string>{id}</string><key>CFBundleExecutable</key><string>{exe}</string>\
         <key>OSBundleLibraries</key><dict>{libs}</dict></dict></plist>\n"
    )
}

/// A kext release zip made by Debian's `zip` from `files` (path, contents).
fn kext_release(dir: &Path, name: &str, files: &[(&str, String)]) -> PathBuf {
    let root = dir.join(format!("{name}-tree"));
    for (path, text) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let zip = dir.join(format!("{name}.zip"));
    run(Command::new("zip").arg("-q").arg("-r").arg(&zip).arg(".").current_dir(&root));
    std::fs::remove_dir_all(&root).unwrap();
    zip
}

fn options(out: &Path, cache: &Path, replace: bool, allow_tcg: bool) -> PrepareOptions {
    PrepareOptions {
        out: out.to_owned(),
        cache_root: cache.to_owned(),
        replace,
        recovery: None,
        opencore: None,
        allow_tcg,
        progress: fetch::ProgressMode::Off,
        quiet: true,
        sink: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_macos_prepare_makes_a_directory_whose_install_script_boots_opencores_disk() {
    let scratch = testbed::scratch_dir("macos-prepare").unwrap();
    let dir = scratch.path();
    let bootstrap = testbed::efi::stand_in(dir, MARKER).unwrap();
    testbed_guests::macos_standin::opencore_release(dir, &bootstrap).unwrap();
    // Kext releases in the shapes acidanthera ships: a bundle at the top (with debug symbols beside it), and
    // bundles under `Kexts/`, of which the recipe takes one. The plug-in is listed first in the recipe; it links
    // against Lilu, so Kernel.Add must list Lilu first.
    let lilu_plist = info_plist("as.vit9696.Lilu", "Lilu", &["com.apple.kpi.bsd"]);
    kext_release(
        dir,
        "Lilu-test-RELEASE",
        &[
            ("Lilu.kext/Contents/Info.plist", lilu_plist.clone()),
            ("Lilu.kext/Contents/MacOS/Lilu", "lilu executable".to_owned()),
            ("Lilu.kext.dSYM/Contents/Info.plist", "debug symbols".to_owned()),
        ],
    );
    let vsmc_plist = info_plist("as.vit9696.VirtualSMC", "VirtualSMC", &["as.vit9696.Lilu"]);
    kext_release(
        dir,
        "VirtualSMC-test-RELEASE",
        &[
            ("Kexts/VirtualSMC.kext/Contents/Info.plist", vsmc_plist.clone()),
            ("Kexts/VirtualSMC.kext/Contents/MacOS/VirtualSMC", "vsmc executable".to_owned()),
            ("Kexts/SMCProcessor.kext/Contents/Info.plist", info_plist("x.SMCProcessor", "SMCProcessor", &[])),
            ("Kexts/SMCProcessor.kext/Contents/MacOS/SMCProcessor", "not taken".to_owned()),
        ],
    );
    // A 4 MiB "recovery" disk with zero, raw and zlib runs.
    let mut recovery_disk: Vec<u8> = (0..4u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect();
    recovery_disk[1 << 20..2 << 20].fill(0);
    let dmg = dir.join("BaseSystem.dmg");
    testbed_guests::udif::write(&recovery_disk, &dmg, |i, _| {
        if i % 2 == 0 { testbed_guests::udif::Compression::Zlib } else { testbed_guests::udif::Compression::Raw }
    });
    let recipe_path = dir.join("mac.toml");
    std::fs::write(
        &recipe_path,
        "name = \"mac\"\nusername = \"agent\"\nmemory = 4096\ncpus = 2\ndiskSize = \"32G\"\nsshPort = 2299\n\
         [source.macos]\nversion = \"ventura\"\nopencore = \"OpenCore-stand-in-RELEASE.zip\"\n\
         recovery = \"BaseSystem.dmg\"\nbootArgs = [\"debug=0x100\"]\n\
         kexts = [{ path = \"VirtualSMC-test-RELEASE.zip\", bundles = [\"VirtualSMC.kext\"] }, \"Lilu-test-RELEASE.zip\"]\n",
    )
    .unwrap();
    let recipe = Recipe::load(&recipe_path).unwrap();
    let Source::Macos(m) = &recipe.source else { panic!("not a macOS recipe") };
    let cache = dir.join("cache");
    let out = dir.join("mac");

    let prepared = prepare(&recipe, m, &options(&out, &cache, false, true)).await.unwrap();
    let identity = prepared.identity.clone();
    identity.validate().unwrap();
    assert_eq!(identity.model, "iMacPro1,1");

    // The boot disk: GPT, a clean FAT32 ESP, OpenCore's files and the config, nothing else from the release.
    let disk = out.join(names::OPENCORE);
    let verify = run(Command::new("sgdisk").arg("-v").arg(&disk));
    assert!(verify.contains("No problems found"), "{verify}");
    let bytes = std::fs::read(&disk).unwrap();
    let esp = dir.join("esp.img");
    let start = (ESP_FIRST_LBA * SECTOR) as usize;
    let end = bytes.len() - 33 * SECTOR as usize;
    std::fs::write(&esp, &bytes[start..end]).unwrap();
    let fsck = Command::new("fsck.fat").arg("-n").arg(&esp).output().unwrap();
    assert!(fsck.status.success(), "fsck.fat -n: {}", String::from_utf8_lossy(&fsck.stdout));
    let image = format!("{}@@{start}", disk.display());
    let listing = run(Command::new("mdir").args(["-i", &image, "-/", "-b", "::/"]));
    // Files only (mdir -b lists directories with a trailing slash), compared without case as FAT names are.
    let mut listed: Vec<String> = listing.lines().filter(|l| !l.ends_with('/')).map(str::to_uppercase).collect();
    listed.sort_unstable();
    let expected = [
        "::/EFI/BOOT/BOOTX64.EFI",
        "::/EFI/OC/CONFIG.PLIST",
        "::/EFI/OC/DRIVERS/OPENHFSPLUS.EFI",
        "::/EFI/OC/DRIVERS/OPENRUNTIME.EFI",
        "::/EFI/OC/KEXTS/LILU.KEXT/CONTENTS/INFO.PLIST",
        "::/EFI/OC/KEXTS/LILU.KEXT/CONTENTS/MACOS/LILU",
        "::/EFI/OC/KEXTS/VIRTUALSMC.KEXT/CONTENTS/INFO.PLIST",
        "::/EFI/OC/KEXTS/VIRTUALSMC.KEXT/CONTENTS/MACOS/VIRTUALSMC",
        "::/EFI/OC/OPENCORE.EFI",
    ];
    assert_eq!(listed, expected, "{listing}");
    let copied = dir.join("config-from-disk.plist");
    run(Command::new("mcopy").args(["-n", "-i", &image, "::/EFI/OC/config.plist"]).arg(&copied));
    assert_eq!(std::fs::read(&copied).unwrap(), std::fs::read(out.join(names::CONFIG)).unwrap());
    let py = "import json,plistlib,sys; g=plistlib.load(open(sys.argv[1],'rb'))['PlatformInfo']['Generic']; \
              print(json.dumps([g['SystemProductName'],g['SystemSerialNumber'],g['MLB'],g['SystemUUID'],g['ROM'].hex().upper()]))";
    let seen: Vec<String> = serde_json::from_str(&run(Command::new("python3").args(["-c", py]).arg(&copied))).unwrap();
    assert_eq!(
        seen,
        [&identity.model, &identity.serial, &identity.mlb, &identity.system_uuid, &identity.rom].map(String::clone)
    );
    // The kexts: unpacked byte for byte, listed in Kernel.Add with Lilu first.
    for (path, want) in [
        ("EFI/OC/Kexts/Lilu.kext/Contents/Info.plist", lilu_plist.as_str()),
        ("EFI/OC/Kexts/Lilu.kext/Contents/MacOS/Lilu", "lilu executable"),
        ("EFI/OC/Kexts/VirtualSMC.kext/Contents/Info.plist", vsmc_plist.as_str()),
        ("EFI/OC/Kexts/VirtualSMC.kext/Contents/MacOS/VirtualSMC", "vsmc executable"),
    ] {
        assert_eq!(run(Command::new("mtype").args(["-i", &image, &format!("::/{path}")])), want, "{path}");
    }
    let py = "import json,plistlib,sys; a=plistlib.load(open(sys.argv[1],'rb'))['Kernel']['Add']; \
              print(json.dumps([[k['BundlePath'],k['ExecutablePath'],k['PlistPath'],k['Enabled'],k['Arch']] for k in a]))";
    let add: serde_json::Value =
        serde_json::from_str(&run(Command::new("python3").args(["-c", py]).arg(&copied))).unwrap();
    assert_eq!(
        add,
        serde_json::json!([
            ["Lilu.kext", "Contents/MacOS/Lilu", "Contents/Info.plist", true, "x86_64"],
            ["VirtualSMC.kext", "Contents/MacOS/VirtualSMC", "Contents/Info.plist", true, "x86_64"]
        ])
    );
    let efi = dir.join("bootx64-from-disk.efi");
    run(Command::new("mcopy").args(["-n", "-i", &image, "::/EFI/BOOT/BOOTx64.efi"]).arg(&efi));
    assert!(std::fs::read(&efi).unwrap() == bootstrap);

    // The installer disk is the recovery image's disk; the system disk has the recipe's size.
    assert!(std::fs::read(out.join(names::INSTALLER)).unwrap() == recovery_disk);
    let info = run(Command::new("qemu-img").args(["info", "--output=json"]).arg(out.join("disk.qcow2")));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!((info["format"].as_str(), info["virtual-size"].as_u64()), (Some("qcow2"), Some(32 << 30)));
    let recorded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(names::PREPARED)).unwrap()).unwrap();
    assert_eq!(recorded["identity"]["serial"], identity.serial.as_str());
    assert_eq!(recorded["bootArgs"], "-v keepsyms=1 tlbto_us=0 vti=9 debug=0x100");
    assert_eq!(recorded["recovery"]["size"], std::fs::metadata(&dmg).unwrap().len());
    assert_eq!(recorded["opencore"]["url"], serde_json::Value::Null, "a local release has no URL");
    assert_eq!(recorded["kexts"][0]["bundles"], serde_json::json!(["VirtualSMC.kext"]));
    assert_eq!(recorded["kexts"][1]["bundles"], serde_json::json!(["Lilu.kext"]));
    let script = std::fs::read_to_string(out.join(names::INSTALL)).unwrap();
    for needle in
        ["isa-applesmc", "installer.img", "opencore.img", "hostfwd=tcp:127.0.0.1:2299-:22", &identity.mac_address()]
    {
        assert!(script.contains(needle), "{needle} not in {script}");
    }

    // Run the directory's own install script: OVMF finds the boot disk and starts the stand-in bootstrap.
    let serial = dir.join("serial.log");
    let mut child = tokio::process::Command::new(out.join(names::INSTALL))
        .arg("-serial")
        .arg(format!("file:{}", serial.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut log = qemu::SerialLog::new(&serial);
    let found = log.wait_for(&qemu::Pattern::text(MARKER), Duration::from_secs(300), None).await;
    let exited = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
    if exited.is_err() {
        let _ = child.kill().await;
    }
    found.unwrap_or_else(|e| panic!("the stand-in bootstrap did not run: {e}\n{}", log.contents().unwrap_or_default()));
    assert!(exited.is_ok_and(|s| s.is_ok()), "the stand-in's halt did not end the install script's QEMU");

    // Again with --replace: a new boot disk, the same identity.
    let again = prepare(&recipe, m, &options(&out, &cache, true, true)).await.unwrap();
    assert!(again.identity == identity, "the identity changed on --replace");
    // Without --replace the directory is refused and left alone.
    let refused = prepare(&recipe, m, &options(&out, &cache, false, true)).await.unwrap_err();
    assert!(matches!(refused, BuildError::OutputExists { .. }), "{refused}");
    // No usable KVM here and no --allow-tcg: refused by the pre-flight before anything is made.
    if prepared.accel == "tcg" {
        let other = dir.join("refused");
        let err = prepare(&recipe, m, &options(&other, &cache, false, false)).await.unwrap_err();
        assert!(matches!(&err, BuildError::Preflight { .. }) && err.to_string().contains("--allow-tcg"), "{err}");
        assert!(!other.exists());
        let stray: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with(".refused"))
            .collect();
        assert!(stray.is_empty(), "{stray:?}");
    }
}
