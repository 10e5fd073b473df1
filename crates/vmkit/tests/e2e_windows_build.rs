//! `vmkit image build` and `vmkit image test` on a Windows recipe, end to end under TCG, against a stand-in for
//! Windows Setup (`testbed_guests::windows_standin`: Debian's signed shim, GRUB and kernel with a busybox initramfs that
//! reads the answer media, writes the disk, serves SSH with the key from the answer media and has a `powershell`
//! that decodes `-EncodedCommand`). No Windows media exists where vmkit is tested.
//!
//! Proved from outside, phase by phase: the DVD prompt was answered and Setup ran (the disk holds what the stand-in
//! wrote, with the public key from the answer media); provisioning ran as PowerShell `-EncodedCommand` (its files
//! are on the disk, quotes intact); the guest powered off by itself; the disk is a compacted qcow2 that
//! `qemu-img check` accepts; VARS and the TPM state are kept and listed in the manifest; the install-only files
//! (answer file and media: the password) are gone; a second build is a cache hit; `vmkit image test` boots the
//! image through the same Secure Boot chain and reads Secure Boot and the TPM from the guest's real state; and a
//! failing provisioning command fails the build, naming the phase, with nothing left behind.

use std::path::{Path, PathBuf};
use std::process::Command;

fn vmkit() -> Command {
    Command::new(assert_cmd::cargo::cargo_bin("vmkit"))
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn recipe(dir: &Path, name: &str, commands: &[&str], automate: Option<&str>) -> PathBuf {
    std::fs::write(dir.join("pw"), "Stand-in pass <&\"\n").unwrap();
    let commands: Vec<String> = commands.iter().map(|c| format!("{c:?}")).collect();
    let automate = match automate {
        Some(script) => {
            std::fs::write(dir.join(format!("{name}.yaml")), script).unwrap();
            format!("automate = \"{name}.yaml\"\n")
        }
        None => String::new(),
    };
    let text = format!(
        "name = \"{name}\"\nusername = \"agent\"\nmemory = 1024\ndiskSize = \"4G\"\n\
         [source.windows]\nversion = 11\nedition = \"Pro\"\npasswordFile = \"pw\"\nmaxInstallTime = \"20m\"\n{automate}\
         [provision]\ncommands = [{}]\n",
        commands.join(", ")
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn build(
    recipe: &Path,
    out: &Path,
    media: &testbed_guests::windows_standin::StandinMedia,
    cache: &Path,
) -> (i32, String, String) {
    run(vmkit()
        .args(["image", "build"])
        .arg(recipe)
        .arg("--out")
        .arg(out)
        .arg("--iso")
        .arg(&media.iso)
        .arg("--virtio")
        .arg(&media.virtio)
        .arg("--cache-dir")
        .arg(cache)
        .args(["--progress", "off"]))
}

/// A file from the FAT file system that fills the image's disk.
fn disk_file(raw: &Path, name: &str) -> String {
    let out = Command::new("mtype")
        .arg("-i")
        .arg(raw)
        .arg(format!("::/{name}"))
        .env("MTOOLS_SKIP_CHECK", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "mtype {name}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn leftovers(parent: &Path, name: &str) -> Vec<String> {
    std::fs::read_dir(parent)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n == name || n.starts_with(&format!(".{name}.")))
        .collect()
}

#[test]
fn e2e_windows_build_standin_setup_provision_shutdown_compact_and_image_test() {
    let scratch = testbed::scratch_dir("winbuild").unwrap();
    let dir = scratch.path();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let media = runtime.block_on(testbed_guests::windows_standin::media(dir)).expect("stand-in media");
    let cache = dir.join("cache");
    let recipe_path = recipe(
        dir,
        "win-standin",
        &[
            "echo provisioned-by-vmkit > /c/provisioned.txt",
            r#"printf '%s\n' "it's \"quoted\" & $HOME" > /c/quoting.txt"#,
        ],
        // The automation engine reads the stand-in's screen over VNC while Setup runs.
        Some("boot_wait: 0\nboot_commands:\n  - wait: {text: 'Windows Setup stand-in', timeout: 600}\n"),
    );
    let out = dir.join("win-standin");

    // The build.
    let (code, stdout, stderr) = build(&recipe_path, &out, &media, &cache);
    eprintln!("vmkit image build:\n{stderr}");
    assert_eq!(code, 0, "build failed:\n{stderr}\n{stdout}");
    for phase in ["prepare:", "boot:", "setup:", "provision 1/2:", "provision 2/2:", "shutdown:", "compact:"] {
        // Each line names the image, the time since the build started, and the phase.
        let line =
            regex::Regex::new(&format!(r"(?m)^vmkit: win-standin \[ *\d+\.\ds\] {}", regex::escape(phase))).unwrap();
        assert!(line.is_match(&stderr), "no `{phase}` progress line on stderr:\n{stderr}");
    }
    assert!(stderr.contains("the DVD's prompt was answered"), "{stderr}");
    assert!(stderr.contains("setup: the automation script passed"), "{stderr}");
    assert!(stdout.contains("built"), "{stdout}");
    let serial = std::fs::read_to_string(out.join("serial.log")).unwrap();
    assert!(serial.contains("VMKIT-STANDIN lockdown=y shim_lock=y"), "Setup did not boot under Secure Boot:\n{serial}");
    assert!(serial.contains("VMKIT-KEY-PRESSED"), "{serial}");
    assert!(serial.contains(testbed_guests::windows_standin::SETUP_DONE), "{serial}");

    // The disk: a standalone qcow2 that qemu-img accepts, compacted, holding what Setup and provisioning wrote.
    let disk = out.join("disk.qcow2");
    let (code, check, err) = run(Command::new("qemu-img").arg("check").arg(&disk));
    assert_eq!(code, 0, "qemu-img check: {check}{err}");
    let (_, info, _) = run(Command::new("qemu-img").args(["info", "--output=json"]).arg(&disk));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert!(info.get("backing-filename").is_none(), "not standalone: {info}");
    assert_eq!(info["virtual-size"], 4u64 << 30);
    assert!(info["actual-size"].as_u64().unwrap() < 200 << 20, "not compacted: {info}");
    let raw = dir.join("disk.raw");
    let (code, _, err) = run(Command::new("qemu-img").args(["convert", "-O", "raw"]).arg(&disk).arg(&raw));
    assert_eq!(code, 0, "{err}");
    assert_eq!(disk_file(&raw, "provisioned.txt"), "provisioned-by-vmkit\n");
    assert_eq!(disk_file(&raw, "quoting.txt"), "it's \"quoted\" & /home/agent\n");
    assert!(disk_file(&raw, "setup.txt").contains("with the answer media on /dev/sd"));
    let public = std::fs::read_to_string(out.join("id_ed25519.pub")).unwrap();
    assert_eq!(disk_file(&raw, "ProgramData/ssh/administrators_authorized_keys").trim(), public.trim());
    std::fs::remove_file(&raw).unwrap();

    // What is kept with the image, and what is not.
    for f in ["OVMF_VARS.fd", "tpm/tpm2-00.permall", "run", "manifest.json", "id_ed25519", "id_ed25519.pub"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    // The variable store kept is the one the build's firmware wrote into (boot entries), not a fresh template.
    let vars = std::fs::read(out.join("OVMF_VARS.fd")).unwrap();
    let template = std::fs::read("/usr/share/OVMF/OVMF_VARS_4M.ms.fd").unwrap();
    assert!(vars.len() == template.len() && vars != template, "OVMF_VARS.fd is not the build's variable store");
    for f in ["answer.img", "Autounattend.xml", "install", "prepared.json"] {
        assert!(!out.join(f).exists(), "{f} (install-only) kept");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["base"]["kind"], "windows");
    assert_eq!(manifest["base"]["edition"], "Windows 11 Pro");
    assert_eq!(manifest["machine"]["windows"]["vars"], "OVMF_VARS.fd");
    assert_eq!(manifest["machine"]["windows"]["tpmState"], "tpm");
    assert_eq!(manifest["machine"]["windows"]["secureBoot"], true);
    assert_eq!(manifest["shutdown"], "guest", "{manifest}");
    for f in ["disk.qcow2", "OVMF_VARS.fd", "tpm/tpm2-00.permall", "run"] {
        assert!(manifest["outputs"][f]["sha256"].is_string(), "{f} not in the manifest's outputs");
    }
    let run_script = std::fs::read_to_string(out.join("run")).unwrap();
    assert!(run_script.contains("swtpm socket --tpm2"), "{run_script}");
    assert!(!run_script.contains("answer.img") && !run_script.contains("install.iso"), "{run_script}");

    // Same inputs: nothing to do.
    let (code, stdout, stderr) = build(&recipe_path, &out, &media, &cache);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("up to date"), "{stdout}");

    // The image boots by itself and reports Secure Boot and its TPM from the guest's real state.
    let (code, stdout, stderr) =
        run(vmkit().args(["image", "test", "--no-cache", "--json", "--cache-dir"]).arg(&cache).arg(&out));
    assert_eq!(code, 0, "image test failed:\n{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let detail = report["detail"].as_str().unwrap();
    assert!(detail.contains("Secure Boot on") && detail.contains("TPM 2.0 present"), "{detail}");

    // A failing provisioning command fails the build, names the phase, and leaves nothing behind.
    let failing = recipe(dir, "win-fails", &["echo about to fail", "exit 3"], None);
    let out2 = dir.join("win-fails");
    let (code, _, stderr) = build(&failing, &out2, &media, &cache);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("provision failed") && stderr.contains("exit 3"), "{stderr}");
    assert_eq!(leftovers(dir, "win-fails"), Vec::<String>::new());
}
