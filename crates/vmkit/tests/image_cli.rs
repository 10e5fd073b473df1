//! `vmkit image` paths that need no guest: recipe mistakes at FILE:LINE:COL with exit 2, a cloud image whose
//! SHA-256 does not match (exit 1, nothing cached, no output and no work directory), `image test` on a directory
//! that is not an image (exit 2), an output path that holds something else (refused, untouched), and `image
//! prepare` of a Linux recipe (everything up to the first boot, and no boot).

use assert_cmd::Command;
use predicates::prelude::*;

fn vmkit() -> Command {
    Command::cargo_bin("vmkit").unwrap()
}

#[test]
fn recipe_mistakes_exit_2_with_their_position() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = dir.path().join("bad.toml");
    std::fs::write(
        &recipe,
        "name = \"x\"\nusername = \"agent\"\nmemroy = 1024\nsource = { debian = { suite = \"bookworm\" } }\ncpus = 0\n",
    )
    .unwrap();
    vmkit()
        .args(["image", "build"])
        .arg(&recipe)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("{} has 2 errors:", recipe.display())))
        .stderr(predicate::str::contains(format!(
            "{}:3:1: error: unknown key `memroy`; did you mean `memory`?",
            recipe.display()
        )))
        .stderr(predicate::str::contains(format!("{}:5:8: error: cpus: 0 is out of range", recipe.display())));
    assert!(!dir.path().join("out").exists());
}

#[test]
fn cloud_image_with_the_wrong_digest_fails_before_anything_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("cloud.img");
    std::fs::write(&image, vec![7u8; 4096]).unwrap();
    let recipe = dir.path().join("cloud.toml");
    std::fs::write(
        &recipe,
        format!(
            "name = \"cloud\"\nusername = \"agent\"\n[source.cloudImage]\nurl = \"file://{}\"\nsha256 = \"{}\"\n",
            image.display(),
            "ab".repeat(32)
        ),
    )
    .unwrap();
    let cache = dir.path().join("cache");
    vmkit()
        .args(["image", "build"])
        .arg(&recipe)
        .arg("--out")
        .arg(dir.path().join("cloud"))
        .arg("--cache-dir")
        .arg(&cache)
        .args(["--progress", "off"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("SHA-256 mismatch").and(predicate::str::contains("nothing was cached")));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("cloud") && n != "cloud.img" && n != "cloud.toml")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let cached = std::fs::read_dir(cache.join("sha256")).map(Iterator::count).unwrap_or(0);
    assert_eq!(cached, 0);
}

#[test]
fn an_output_path_holding_something_else_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("precious");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let recipe = dir.path().join("r.toml");
    std::fs::write(&recipe, "name = \"r\"\nusername = \"agent\"\nsource = { debian = { suite = \"bookworm\" } }\n")
        .unwrap();
    vmkit()
        .args(["image", "build"])
        .arg(&recipe)
        .arg("--out")
        .arg(&out)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("is not a vmkit image directory"));
    assert_eq!(std::fs::read_to_string(out.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn image_test_of_a_plain_directory_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    vmkit()
        .args(["image", "test"])
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no manifest.json"));
    vmkit().args(["image", "--help"]).assert().success();
    vmkit().args(["image", "build", "--help"]).assert().success();
}

/// Runs a tool the fixture needs and checks it succeeded.
fn tool(cmd: &mut std::process::Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e} (install wimtools, genisoimage)"));
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn windows_editions_lists_a_udf_iso_and_refuses_what_is_not_windows_media() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("sources")).unwrap();
    std::fs::create_dir_all(dir.path().join("img/Windows")).unwrap();
    std::fs::write(dir.path().join("img/Windows/a.txt"), "stand-in").unwrap();
    let wim = tree.join("sources/install.wim");
    tool(
        std::process::Command::new("wimlib-imagex")
            .arg("capture")
            .arg(dir.path().join("img"))
            .arg(&wim)
            .arg("Windows 11 Pro"),
    );
    tool(std::process::Command::new("wimlib-imagex").arg("info").arg(&wim).args([
        "1",
        "--image-property",
        "WINDOWS/EDITIONID=Professional",
        "--image-property",
        "WINDOWS/ARCH=9",
        "--image-property",
        "WINDOWS/VERSION/BUILD=26100",
    ]));
    let iso = dir.path().join("win.iso");
    tool(
        std::process::Command::new("genisoimage")
            .args(["-quiet", "-udf", "-iso-level", "3", "-V", "WIN", "-o"])
            .arg(&iso)
            .arg(&tree),
    );
    vmkit()
        .args(["image", "windows-editions"])
        .arg(&iso)
        .assert()
        .success()
        .stdout(predicate::str::contains("UDF 1.02, volume \"WIN\"; sources/install.wim (WIM, 1 images)"))
        .stdout(predicate::str::is_match(r"\n1\s+Professional\s+Windows 11 Pro\s+x64\s+0\.0\.26100\.0\n").unwrap());
    let out = vmkit().args(["image", "windows-editions", "--json"]).arg(&iso).assert().success();
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json["editions"][0]["edition_id"], "Professional");
    assert_eq!(json["editions"][0]["arch"], "x64");

    let html = dir.path().join("Win11.iso");
    std::fs::write(&html, "<!DOCTYPE html>\n<html><body>Sign in</body></html>\n".repeat(1000)).unwrap();
    vmkit()
        .args(["image", "windows-editions"])
        .arg(&html)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not an ISO image: found an HTML page (starts with <!DOCTYPE html>)"));
    std::fs::remove_dir_all(tree.join("sources")).unwrap();
    std::fs::create_dir_all(tree.join("dists")).unwrap();
    let other = dir.path().join("other.iso");
    tool(std::process::Command::new("genisoimage").args(["-quiet", "-J", "-V", "DEBIAN", "-o"]).arg(&other).arg(&tree));
    vmkit()
        .args(["image", "windows-editions"])
        .arg(&other)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not Windows installation media: no sources/ folder"));
}

#[test]
fn prepare_makes_a_linux_recipe_ready_for_its_first_boot_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.qcow2");
    tool(std::process::Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(&base).arg("64M"));
    let digest = {
        let out = std::process::Command::new("sha256sum").arg(&base).output().unwrap();
        String::from_utf8(out.stdout).unwrap().split_whitespace().next().unwrap().to_owned()
    };
    let recipe = dir.path().join("cloud.toml");
    std::fs::write(
        &recipe,
        format!(
            "name = \"cloud\"\nusername = \"agent\"\ndiskSize = \"1G\"\n[source.cloudImage]\nurl = \"file://{}\"\nsha256 = \"{digest}\"\n\
             [provision]\npackages = [\"htop\"]\n",
            base.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("first");
    let prepare = || {
        let mut cmd = vmkit();
        cmd.args(["image", "prepare"])
            .arg(&recipe)
            .arg("--out")
            .arg(&out)
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .args(["--progress", "off"])
            .env("VMKIT_ACCEL", "tcg");
        cmd
    };
    prepare().assert().code(0).stdout(predicate::str::contains("first boot:"));
    for f in ["disk.qcow2", "seed.iso", "id_ed25519", "id_ed25519.pub", "install", "prepared.json"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(!out.join("serial.log").exists() && !out.join("manifest.json").exists(), "something booted");
    // The disk: an overlay of the recipe's size on the verified base in the cache.
    let info =
        std::process::Command::new("qemu-img").args(["info", "--output=json"]).arg(out.join("disk.qcow2")).output();
    let info: serde_json::Value = serde_json::from_slice(&info.unwrap().stdout).unwrap();
    assert_eq!(info["virtual-size"], 1u64 << 30);
    let backing = info["full-backing-filename"].as_str().unwrap().to_owned();
    let prepared: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("prepared.json")).unwrap()).unwrap();
    assert_eq!(prepared["backing"].as_str(), Some(backing.as_str()));
    assert_eq!(prepared["base"]["kind"], "cloudImage");
    // The seed carries the recipe's packages and the generated key; the install script boots disk and seed.
    let listing = std::process::Command::new("isoinfo")
        .args(["-R", "-x", "/user-data", "-i"])
        .arg(out.join("seed.iso"))
        .output()
        .unwrap();
    let user_data = String::from_utf8(listing.stdout).unwrap();
    let public = std::fs::read_to_string(out.join("id_ed25519.pub")).unwrap();
    assert!(user_data.contains("htop") && user_data.contains(public.trim()), "{user_data}");
    let script = std::fs::read_to_string(out.join("install")).unwrap();
    assert!(script.contains("disk.qcow2") && script.contains("seed.iso"), "{script}");
    // An existing directory is not replaced without --replace; Windows media flags are refused.
    prepare().assert().code(2).stderr(predicate::str::contains("--replace"));
    prepare().arg("--replace").arg("--iso").arg(&base).assert().code(2).stderr(predicate::str::contains("--iso"));
    prepare().arg("--replace").assert().code(0);
}

#[test]
fn a_windows_build_without_media_or_with_a_broken_script_exits_2_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "pw\n").unwrap();
    std::fs::write(dir.path().join("setup.yaml"), "boot_commands:\n  - wiat: 'x'\n").unwrap();
    let write = |name: &str, extra: &str| {
        let recipe = dir.path().join(name);
        std::fs::write(
            &recipe,
            format!(
                "name = \"win\"\nusername = \"agent\"\n[source.windows]\nversion = 11\nedition = \"Pro\"\npasswordFile = \"pw\"\n{extra}"
            ),
        )
        .unwrap();
        recipe
    };
    let build = |recipe: &std::path::Path| {
        let mut cmd = vmkit();
        cmd.args(["image", "build"])
            .arg(recipe)
            .arg("--out")
            .arg(dir.path().join("win"))
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .env("VMKIT_ACCEL", "tcg");
        cmd
    };
    build(&write("no-media.toml", ""))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("prepare failed: no install ISO").and(predicate::str::contains("--iso PATH")));
    build(&write("script.toml", "automate = \"setup.yaml\"\n"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("automate:").and(predicate::str::contains("setup.yaml:2:")));
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("win") && !n.ends_with(".toml"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A stand-in OpenCore release zip (OpenCorePkg's layout, placeholder bytes) made by Debian's `zip`.
fn opencore_stand_in(dir: &std::path::Path) -> std::path::PathBuf {
    let root = dir.join("release");
    for file in [
        "X64/EFI/BOOT/BOOTx64.efi",
        "X64/EFI/OC/OpenCore.efi",
        "X64/EFI/OC/Drivers/OpenRuntime.efi",
        "X64/EFI/OC/Drivers/OpenHfsPlus.efi",
        "Docs/Sample.plist",
    ] {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("stand-in {file}")).unwrap();
    }
    let zip = dir.join("OpenCore-RELEASE.zip");
    tool(std::process::Command::new("zip").arg("-q").arg("-r").arg(&zip).arg(".").current_dir(&root));
    zip
}

#[test]
fn macos_prepare_verifies_the_pinned_opencore_release_and_prints_no_identity() {
    let dir = tempfile::tempdir().unwrap();
    let zip = opencore_stand_in(dir.path());
    let dmg = dir.path().join("BaseSystem.dmg");
    let disk: Vec<u8> = (0..1u32 << 20).map(|i| (i % 253) as u8).collect();
    testbed_guests::udif::write(&disk, &dmg, |_, _| testbed_guests::udif::Compression::Zlib);
    let recipe = dir.path().join("mac.toml");
    let write_recipe = |sha256: &str| {
        std::fs::write(
            &recipe,
            format!(
                "name = \"mac\"\nusername = \"agent\"\nmemory = 4096\ndiskSize = \"8G\"\n[source.macos]\n\
                 version = \"sonoma\"\nopencore = {{ url = \"file://{}\", sha256 = \"{sha256}\" }}\n",
                zip.display()
            ),
        )
        .unwrap();
    };
    let out = dir.path().join("mac");
    let cache = dir.path().join("cache");
    let prepare = |extra: &[&str]| {
        let mut cmd = vmkit();
        cmd.args(["image", "prepare"])
            .arg(&recipe)
            .arg("--out")
            .arg(&out)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("--recovery")
            .arg(&dmg)
            .args(["--progress", "off"])
            .args(extra)
            // The pre-flight sees "no usable KVM", whatever this host has.
            .env("VMKIT_ACCEL", "tcg");
        cmd
    };

    // A release whose bytes are not the pinned ones: exit 1, nothing made.
    write_recipe(&"ab".repeat(32));
    prepare(&["--allow-tcg"]).assert().code(1).stderr(predicate::str::contains("SHA-256 mismatch"));
    assert!(!out.exists());
    // No usable KVM and no --allow-tcg: refused before anything is fetched.
    let digest = fetch::Sha256::of_file(&zip).unwrap().to_hex();
    write_recipe(&digest);
    prepare(&[]).assert().code(1).stderr(predicate::str::contains("--allow-tcg"));
    assert!(!out.exists() && !cache.join("sha256").join(&digest).exists());
    // Windows flags on a macOS recipe: bad input.
    prepare(&["--allow-tcg", "--iso", "win.iso"]).assert().code(2).stderr(predicate::str::contains("Windows recipes"));

    let done =
        prepare(&["--allow-tcg"]).assert().code(0).stdout(predicate::str::contains("prepared (macOS sonoma, tcg)"));
    let output = done.get_output();
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let prepared: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("prepared.json")).unwrap()).unwrap();
    assert_eq!(prepared["opencore"]["sha256"], digest.as_str());
    for field in ["serial", "mlb", "systemUuid", "rom"] {
        let value = prepared["identity"][field].as_str().unwrap();
        assert!(!printed.contains(value), "the {field} was printed: {printed}");
    }
    assert!(cache.join("sha256").join(&digest).is_file(), "the verified release is in the cache");
}
