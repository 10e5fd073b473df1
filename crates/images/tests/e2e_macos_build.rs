//! `image build` and `image test` on a macOS recipe, end to end under TCG, against the stand-ins of
//! `testbed_guests::macos_standin` (macOS cannot boot where vmkit is tested): a stand-in OpenCore release whose picker is
//! GRUB, and a recovery image (UDIF) whose Debian kernel and busybox initramfs play Recovery, the installer and
//! Setup Assistant on the screen VNC shows.
//!
//! Proved from outside: the build ran the real pipeline with the macOS machine profile (QEMU accepted it and
//! OVMF started the picker from vmkit's boot disk); the automation script — with the account name, the password
//! (a secret variable) and the generated public key bound as variables — drove the guest's screens over VNC: the
//! guest saw clicks land on its `[ Erase ]` and `[ Continue ]` buttons and read the typed password (its SHA-256 on
//! the disk equals the password file's, and the password is in no progress line); the guest installed, rebooted
//! through the picker into the installed system, and SSH let the account in with the generated key; provisioning
//! ran as root (its file is on the disk); the guest powered off by itself; the disk is a compacted standalone
//! qcow2; the directory holds the image, `run` and a manifest with the Mac identity (the one on the boot disk's
//! `config.plist`) and no installer; a second build is a cache hit; `image test` boots the image again and
//! `sw_vers` answers; a recipe without a password file is refused before anything is made.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use images::build::{BuildOptions, Outcome, ProgressSink};
use images::recipe::Recipe;

const PASSWORD: &str = "Stand-in pass <&\"'";

/// The stand-in's screens, driven the way the shipped scripts drive macOS's: clicks on buttons, typed text.
const SCRIPT: &str = r#"boot_wait: 0
variables:
  username: {}
  password: {secret: true}
  ssh_public_key: {}
boot_commands:
  - wait: {text: 'Disk Utility', timeout: 900}
  - click: '[ Erase ]'
  - wait: {text: 'Reinstall macOS Stand-in', timeout: 600}
  - click: '[ Continue ]'
  - wait: {text: 'Create a Computer Account', timeout: 900}
    description: Setup Assistant, after the installer's reboot
  - type: '${username}'
  - key: enter
  - wait: {text: 'Password', timeout: 120}
  - type: '${password}'
  - key: enter
  - wait: {text: 'Terminal', timeout: 120}
  - type: "mkdir -p ~/.ssh && echo '${ssh_public_key}' > ~/.ssh/authorized_keys && echo REMOTE-LOGIN-$((40+2))"
  - key: enter
  - wait: {text: 'REMOTE-LOGIN-42', timeout: 120}
"#;

fn run(cmd: &mut Command) -> String {
    testbed::process::run(cmd.env("MTOOLS_SKIP_CHECK", "1")).unwrap_or_else(|e| panic!("{e:#}"))
}

fn recipe(dir: &Path, name: &str, media: &testbed_guests::macos_standin::MacStandin, password: bool) -> Recipe {
    std::fs::write(dir.join("standin.yaml"), SCRIPT).unwrap();
    std::fs::write(dir.join("pw"), format!("{PASSWORD}\n")).unwrap();
    let text = format!(
        "name = \"{name}\"\nusername = \"agent\"\nmemory = 4096\ncpus = 2\ndiskSize = \"4G\"\n\
         [source.macos]\nversion = \"sonoma\"\nopencore = {:?}\nrecovery = {:?}\nautomate = \"standin.yaml\"\n\
         maxInstallTime = \"40m\"\nverboseBoot = false\n{}\
         [provision]\ncommands = [\"echo provisioned-by-vmkit > /c/provisioned.txt\", \"id -u > /c/provision-uid.txt\"]\n",
        media.opencore.display().to_string(),
        media.recovery.display().to_string(),
        if password { "passwordFile = \"pw\"\n" } else { "" },
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    Recipe::load(&path).unwrap()
}

fn options(out: &Path, cache: &Path, lines: &Arc<Mutex<Vec<String>>>) -> BuildOptions {
    let mut opts = BuildOptions::new(out.to_owned(), cache.to_owned());
    opts.progress = fetch::ProgressMode::Off;
    opts.macos.allow_tcg = true;
    let sink = lines.clone();
    opts.sink = Some(ProgressSink(Arc::new(move |e| {
        let line = format!("[{:>6.1}s] {}", e.elapsed.as_secs_f64(), e.message);
        eprintln!("{line}");
        sink.lock().unwrap().push(line);
    })));
    opts
}

/// A file from the FAT file system on the image's disk.
fn disk_file(raw: &Path, name: &str) -> String {
    run(Command::new("mtype").arg("-i").arg(raw).arg(format!("::/{name}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_macos_build_standin_install_over_vnc_ssh_provision_and_image_test() {
    let scratch = testbed::scratch_dir("macos-build").unwrap();
    let dir = scratch.path();
    let media = testbed_guests::macos_standin::media(dir, "14.6").await.expect("stand-in media");
    let cache = dir.join("cache");
    let out = dir.join("mac-standin");
    let lines = Arc::new(Mutex::new(Vec::new()));

    // Without a password file nothing is made.
    let no_pw = recipe(dir, "mac-nopw", &media, false);
    let images::recipe::Source::Macos(m) = &no_pw.source else { panic!("not macOS") };
    let err =
        images::macos::build::build(&no_pw, m, &options(&dir.join("mac-nopw"), &cache, &lines)).await.unwrap_err();
    assert!(err.to_string().contains("passwordFile") && err.is_bad_input(), "{err}");
    assert!(!dir.join("mac-nopw").exists());

    let recipe = recipe(dir, "mac-standin", &media, true);
    let opts = options(&out, &cache, &lines);
    let outcome = images::build::build(&recipe, &opts).await;
    let log = lines.lock().unwrap().join("\n");
    let manifest = match outcome {
        Ok(Outcome::Built(m)) => m,
        other => {
            let serial = std::fs::read_to_string(dir.join(".mac-standin.serial.log")).unwrap_or_default();
            panic!("build: {other:?}\n{log}\n{serial}")
        }
    };
    for phase in ["prepare:", "boot:", "install:", "provision 1/2:", "provision 2/2:", "shutdown:", "compact:"] {
        assert!(log.lines().any(|l| l.contains(&format!("] {phase}"))), "no `{phase}` line:\n{log}");
    }
    assert!(log.contains("install: the install script passed"), "{log}");
    assert!(!log.contains(PASSWORD) && !log.contains("Stand-in pass"), "the password is in the progress:\n{log}");

    let serial = std::fs::read_to_string(out.join("serial.log")).unwrap();
    for needle in [
        "VMKIT-STANDIN-BOOT recovery",
        "STANDIN: clicked [ Erase ] at",
        "STANDIN: clicked [ Continue ] at",
        testbed_guests::macos_standin::INSTALLED,
        "VMKIT-STANDIN-BOOT installed",
        testbed_guests::macos_standin::ACCOUNT_MADE,
        "STANDIN: serving SSH",
    ] {
        assert!(serial.contains(needle), "{needle:?} not on the serial log:\n{serial}");
    }
    assert!(!serial.contains(PASSWORD), "the password is on the serial log");

    // The disk: a compacted standalone qcow2 holding what the installer, Setup Assistant and provisioning wrote.
    let disk = out.join("disk.qcow2");
    run(Command::new("qemu-img").arg("check").arg(&disk));
    let info: serde_json::Value =
        serde_json::from_str(&run(Command::new("qemu-img").args(["info", "--output=json"]).arg(&disk))).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert!(info.get("backing-filename").is_none(), "not standalone: {info}");
    assert_eq!(info["virtual-size"], 4u64 << 30);
    let raw = dir.join("disk.raw");
    run(Command::new("qemu-img").args(["convert", "-O", "raw"]).arg(&disk).arg(&raw));
    assert_eq!(disk_file(&raw, "account").trim(), "agent");
    let typed = disk_file(&raw, "password.sha256");
    assert_eq!(typed.trim(), fetch::Sha256::of_bytes(PASSWORD.as_bytes()).to_hex(), "the typed password differs");
    let public = std::fs::read_to_string(out.join("id_ed25519.pub")).unwrap();
    assert_eq!(disk_file(&raw, "ssh/authorized_keys").trim(), public.trim());
    assert_eq!(disk_file(&raw, "provisioned.txt"), "provisioned-by-vmkit\n");
    assert_eq!(disk_file(&raw, "provision-uid.txt").trim(), "0", "provisioning did not run as root");
    std::fs::remove_file(&raw).unwrap();

    // The directory: image, run script, manifest with the Mac identity; no install-only files.
    for f in ["disk.qcow2", "opencore.img", "OVMF_VARS.fd", "run", "manifest.json", "id_ed25519", "config.plist"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for f in ["installer.img", "install", "prepared.json"] {
        assert!(!out.join(f).exists(), "{f} (install-only) kept");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(json["base"]["kind"], "macos", "{json}");
    assert_eq!(json["base"]["version"], "sonoma");
    assert_eq!(json["base"]["script"]["name"], dir.join("standin.yaml").display().to_string());
    assert_eq!(json["shutdown"], "guest", "{json}");
    assert_eq!(json["tools"]["guest macOS"], "14.6");
    let identity = &json["base"]["identity"];
    assert_eq!(identity["model"], "iMacPro1,1");
    let images::manifest::BaseRecord::Macos(record) = &manifest.base else { panic!("not a macOS manifest") };
    // The identity on the image's boot disk is the manifest's.
    let esp = format!("{}@@{}", out.join("opencore.img").display(), images::macos::bootdisk::ESP_FIRST_LBA * 512);
    let plist = run(Command::new("mtype").args(["-i", &esp, "::/EFI/OC/config.plist"]));
    for value in [&record.identity.serial, &record.identity.mlb, &record.identity.system_uuid] {
        assert!(plist.contains(value.as_str()), "{value} not in the boot disk's config.plist");
    }
    for f in ["disk.qcow2", "opencore.img", "OVMF_VARS.fd", "run"] {
        assert!(json["outputs"][f]["sha256"].is_string(), "{f} not in the outputs");
    }
    let script = std::fs::read_to_string(out.join("run")).unwrap();
    assert!(script.contains("isa-applesmc") && script.contains("opencore.img"), "{script}");
    assert!(!script.contains("installer.img"), "{script}");
    assert!(!json.to_string().contains("Stand-in pass"), "the password is in the manifest");

    // Same inputs: nothing to do.
    let again = images::build::build(&recipe, &opts).await.unwrap();
    assert!(matches!(again, Outcome::UpToDate(_)), "{again:?}");

    // `image test`: the image boots by itself (through the picker into the installed system) and sw_vers answers.
    let test = images::boottest::TestOptions {
        cache_root: cache.clone(),
        use_cache: false,
        key: None,
        boot_timeout: Duration::from_secs(900),
        quiet: false,
        sink: None,
    };
    let report = images::boottest::test_image(&out, &test).await.unwrap();
    assert!(report.passed, "{report:?}");
    assert!(report.detail.contains("sw_vers reports macOS 14.6"), "{}", report.detail);
}
