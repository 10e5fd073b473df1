//! The Nix side of vmkit (`flake.nix`, `nix/`), checked with Debian's Nix (`nix-bin`) and the vmkit binary.
//!
//! What runs everywhere (nixpkgs is not installable from a package registry, so these need no nixpkgs):
//! - every `.nix` file parses (`nix-instantiate --parse`);
//! - the NixOS module's options are built from `nix/desktop-options.json`, which must be exactly what
//!   `vmkit desktop schema --json` prints (the schema-drift test);
//! - the module's rendering (`nix/desktop-render.nix`, free of nixpkgs) turns every example config and a config
//!   written in Nix into JSON that matches its golden file and that vmkit loads into the same domain XML as the
//!   TOML original;
//! - `vmkit desktop plan` against the real libvirt daemon plans to define every VM of each rendered config;
//! - the host settings the module sets (`nix/desktop-host.nix`) are what `vmkit desktop host-plan` lists;
//! - image recipes written as Nix attribute sets (`nix/recipe.nix`) render to TOML that vmkit's recipe loader
//!   accepts as the same recipe.
//!
//! With `VMKIT_NIXPKGS_LIB=/path/to/nixpkgs/lib` (at build and run time), `nix_module_full_eval` evaluates the whole
//! module with `lib.evalModules` and stand-ins for the NixOS options it sets; without it the test is compiled as
//! ignored and nextest lists it as SKIP (never as passed).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn vmkit_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vmkit"))
}

/// Runs vmkit; returns (exit code, stdout, stderr).
fn vmkit(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(vmkit_bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn vmkit_ok(args: &[&str]) -> String {
    let (code, out, err) = vmkit(args);
    assert_eq!(code, 0, "vmkit {} failed ({code}):\n{out}\n{err}", args.join(" "));
    out
}

/// `nix-instantiate` evaluating only: the `dummy://` store needs no daemon and no write access to /nix (paths
/// interpolated into strings get their store path computed, nothing is copied), and no build users (root).
fn nix_instantiate() -> Command {
    let mut cmd = Command::new("nix-instantiate");
    cmd.args(["--store", "dummy://", "--option", "build-users-group", ""]).current_dir(root());
    cmd
}

fn run_nix(mut cmd: Command) -> Result<String, String> {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run nix-instantiate (Debian package nix-bin): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() { Ok(stdout) } else { Err(stderr) }
}

/// Evaluates a Nix expression strictly to JSON.
fn eval_json(expr: &str) -> Value {
    let mut cmd = nix_instantiate();
    cmd.args(["--eval", "--strict", "--json", "-E", expr]);
    let out = run_nix(cmd).unwrap_or_else(|e| panic!("nix-instantiate --eval failed:\n{expr}\n{e}"));
    serde_json::from_str(&out).unwrap()
}

/// A Nix string literal for `s` (paths here are plain).
fn nix_str(s: &str) -> String {
    serde_json::to_string(s).unwrap().replace("${", "\\${")
}

/// The configs every desktop test covers: (name, Nix expression of the settings, TOML original if any).
fn desktop_configs() -> Vec<(String, String, Option<PathBuf>)> {
    let mut out = Vec::new();
    let mut examples: Vec<PathBuf> = std::fs::read_dir(root().join("examples/desktop"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    examples.sort();
    for p in examples {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let expr = format!("builtins.fromTOML (builtins.readFile {})", nix_str(&p.display().to_string()));
        out.push((name, expr, Some(p)));
    }
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(root().join("nix/tests/desktop"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "nix"))
        .collect();
    fixtures.sort();
    for p in fixtures {
        let name = format!("nix-{}", p.file_stem().unwrap().to_string_lossy());
        out.push((name, format!("import {}", nix_str(&p.display().to_string())), None));
    }
    assert!(out.len() >= 9, "{out:?}");
    out
}

fn render(settings: &str) -> Value {
    eval_json(&format!("import ./nix/desktop-render.nix {{ }} ({settings})"))
}

fn write_json(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(format!("{name}.json"));
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

fn xml(file: &Path) -> String {
    vmkit_ok(&["desktop", "xml", "--skip-path-checks", &file.display().to_string()])
}

/// vmkit's host plan for a config, in the shape `nix/desktop-host.nix` gives (CPU vendor not detected).
fn host_plan(file: &Path, empty_root: &Path) -> Value {
    let (code, out, err) = vmkit(&[
        "desktop",
        "host-plan",
        "--json",
        "--no-kvm-probe",
        "--skip-path-checks",
        "--host-root",
        &empty_root.display().to_string(),
        &file.display().to_string(),
    ]);
    assert!(code == 0 || code == 1, "host-plan failed ({code}): {err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let h = &v["host"];
    let setting = |s: &Value| {
        let (k, v) = (s["key"].as_str().unwrap(), s["value"].as_str().unwrap());
        if v.is_empty() { k.to_owned() } else { format!("{k}={v}") }
    };
    let notes: Vec<&str> = h["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let n = n.as_str().unwrap();
            if n.starts_with("the CPU vendor is unknown") {
                "cpu-vendor"
            } else if n.starts_with("vfio-pci must load") {
                "vfio-initrd"
            } else if n.starts_with("firewallPorts") {
                "firewall"
            } else {
                panic!("a host-plan note desktop-host.nix does not know: {n}")
            }
        })
        .collect();
    json!({
        "kernelParams": h["kernel_params"].as_array().unwrap().iter().map(setting).collect::<Vec<_>>(),
        "sysctl": h["sysctl"].as_array().unwrap().iter()
            .map(|s| (s["key"].as_str().unwrap().to_owned(), json!(s["value"].as_str().unwrap().parse::<u64>().unwrap())))
            .collect::<serde_json::Map<_, _>>(),
        "mounts": h["mounts"].as_array().unwrap().iter()
            .map(|m| json!({ "what": m["what"], "target": m["target"], "fstype": m["fstype"], "options": m["options"] }))
            .collect::<Vec<_>>(),
        "tmpfiles": h["tmpfiles"].as_array().unwrap().iter()
            .map(|t| format!("{} {}", t["key"].as_str().unwrap(), t["value"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        "notes": notes,
    })
}

fn nix_host(settings_json: &Value) -> Value {
    let mut v = eval_json(&format!(
        "import ./nix/desktop-host.nix (builtins.fromJSON {})",
        nix_str(&settings_json.to_string())
    ));
    let ids: Vec<Value> = v["notes"].as_array().unwrap().iter().map(|n| n["id"].clone()).collect();
    v["notes"] = Value::Array(ids);
    v.as_object_mut().unwrap().remove("initrdKernelModules");
    v.as_object_mut().unwrap().remove("enabledVms");
    v
}

/// Compares with a golden file; `VMKIT_UPDATE_GOLDEN=1` rewrites it.
fn golden(name: &str, actual: &Value) {
    let path = root().join("nix/tests/golden").join(format!("{name}.json"));
    let text = format!("{}\n", serde_json::to_string_pretty(actual).unwrap());
    if std::env::var_os("VMKIT_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (VMKIT_UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(text, expected, "{} differs from the rendering (VMKIT_UPDATE_GOLDEN=1 rewrites it)", path.display());
}

#[test]
fn nix_files_parse() {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                if !matches!(name.as_str(), ".git" | "target" | "node_modules") {
                    walk(&p, out);
                }
            } else if name.ends_with(".nix") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(&root(), &mut files);
    files.sort();
    let names: Vec<String> = files.iter().map(|p| p.strip_prefix(root()).unwrap().display().to_string()).collect();
    for must in ["flake.nix", "nix/module.nix", "nix/package.nix", "nix/images.nix", "nix/desktop-render.nix"] {
        assert!(names.iter().any(|n| n == must), "{must} is missing: {names:?}");
    }
    for f in &files {
        let mut cmd = nix_instantiate();
        cmd.arg("--parse").arg(f);
        if let Err(e) = run_nix(cmd) {
            panic!("{} does not parse:\n{e}", f.display());
        }
    }
    // And a file that does not parse is caught.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.nix");
    std::fs::write(&bad, "{ a = 1; b = ; }").unwrap();
    let mut cmd = nix_instantiate();
    cmd.arg("--parse").arg(&bad);
    assert!(run_nix(cmd).is_err());
}

#[test]
fn nix_module_schema_is_what_vmkit_prints() {
    let printed = vmkit_ok(&["desktop", "schema", "--json"]);
    let committed = std::fs::read_to_string(root().join("nix/desktop-options.json")).unwrap();
    assert!(
        printed == committed,
        "nix/desktop-options.json differs from `vmkit desktop schema --json`: the NixOS module's options drifted \
         from vmkit's config. Regenerate it: vmkit desktop schema --json > nix/desktop-options.json"
    );
    let text = vmkit_ok(&["desktop", "schema"]);
    for line in [
        "vms.<name>.memory  (size; default \"4G\")\n    Maximum and boot memory (at least 32M).",
        "vms.<name>.ssh  (table; default (per option)) [vmkit extension]",
        "vms.<name>.ssh.port  (integer 1..65535; default 22)\n",
        "hugepages.enable  (bool; default unset: from the profile",
    ] {
        assert!(text.contains(line), "`vmkit desktop schema` lacks {line:?}:\n{text}");
    }
    let schema: Value = serde_json::from_str(&committed).unwrap();
    // The lib-free renderer knows every option of the schema: rendering a config that sets one option of each
    // kind keeps it, and an option the schema lacks is an error with its path.
    let all = render(
        r#"{ enable = true; hugepages.count = 4; vms.a = { memory = "1G"; extraDevices = "<watchdog model='i6300esb'/>"; memballoon.statsInterval = 0; directBoot.kernel = "/k"; }; }"#,
    );
    assert_eq!(all["vms"]["a"]["memballoon"]["statsInterval"], json!(0));
    assert_eq!(all["hugepages"]["count"], json!(4));
    let mut cmd = nix_instantiate();
    cmd.args(["--eval", "--strict", "--json", "-E", "import ./nix/desktop-render.nix { } { vms.a.memroy = \"1G\"; }"]);
    let err = run_nix(cmd).expect_err("an unknown option was rendered");
    assert!(err.contains("virtualisation.desktopVMs.vms.a.memroy: vmkit has no such option"), "{err}");
    assert_eq!(schema["version"], json!(1));
}

/// The string formats' patterns mean the same to Nix (`builtins.match`, POSIX extended, whole string) as to the
/// regex engine vmkit's unit tests check them with against its parsers.
#[test]
fn nix_format_patterns_match_as_in_vmkit() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("nix/desktop-options.json")).unwrap()).unwrap();
    let mut formats = std::collections::BTreeMap::new();
    fn collect(v: &Value, out: &mut std::collections::BTreeMap<String, String>) {
        match v {
            Value::Object(m) => {
                if let (Some(Value::String(name)), Some(Value::String(pattern))) = (m.get("name"), m.get("pattern")) {
                    out.insert(name.clone(), pattern.clone());
                }
                m.values().for_each(|v| collect(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    collect(&schema, &mut formats);
    assert_eq!(formats.len(), 10, "{formats:?}");
    let samples = [
        "16G",
        "512m",
        "16GiB",
        "16 GB",
        "16GB",
        "1.5G",
        "",
        "4dea22b3-1d52-d8f3-2516-782e98ab3fa0",
        "4DEA22B31D52D8F32516782E98AB3FA0",
        "4dea22b3-1d52-d8f3-2516",
        "52:54:00:AB:cd:01",
        "52-54-00-ab-cd-01",
        "0000:0a:1f.7",
        "01:00.1",
        "01:00",
        "0000:01:00.8",
        "10de:1b80",
        "10de-1b80",
        "0-3,^2,8",
        "2",
        "1,,2",
        "0-",
        "win11-dev_2.0",
        "a+b",
        "-x",
        ".hidden",
        "has space",
        "a/b",
        "projects",
        "/srv/x",
        "srv/x",
        "default",
        "a\tb",
        "x\ny",
    ];
    for (name, pattern) in &formats {
        let re = regex::Regex::new(&format!("^(?:{pattern})$")).unwrap();
        let expected: Vec<bool> = samples.iter().map(|s| re.is_match(s)).collect();
        let list: Vec<String> = samples.iter().map(|s| format!("\"{}\"", s.replace('$', "\\$"))).collect();
        let actual =
            eval_json(&format!("map (s: builtins.match {} s != null) [ {} ]", nix_str(pattern), list.join(" ")));
        assert_eq!(actual, json!(expected), "{name}: {pattern}");
        assert!(expected.iter().any(|m| *m) && expected.iter().any(|m| !*m), "{name}: the samples do not tell");
    }
}

#[test]
fn nix_rendered_configs_match_golden_and_load_into_the_same_domains() {
    let dir = tempfile::tempdir().unwrap();
    for (name, settings, toml) in desktop_configs() {
        let rendered = render(&settings);
        golden(&name, &rendered);
        let file = write_json(dir.path(), &name, &rendered);
        let from_nix = xml(&file);
        assert!(from_nix.contains("<domain"), "{name}: {from_nix}");
        if let Some(toml) = toml {
            assert_eq!(from_nix, xml(&toml), "{name}: the rendered JSON gives other domains than the TOML");
        }
    }
}

/// The rendered JSON goes through `vmkit desktop plan` against the real libvirt daemon: a plan that defines every
/// enabled VM (plan only reads; nothing is applied).
#[test]
fn nix_rendered_configs_are_planned_against_libvirt() {
    testbed::libvirt::ensure_libvirtd().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for (name, settings, _) in desktop_configs() {
        let rendered = render(&settings);
        let file = write_json(dir.path(), &name, &rendered);
        let plan = vmkit_ok(&[
            "desktop",
            "plan",
            "--skip-path-checks",
            "--connect",
            testbed::libvirt::SYSTEM_URI,
            &file.display().to_string(),
        ]);
        let vms = rendered["vms"].as_object().unwrap();
        let enabled: Vec<&String> = vms.iter().filter(|(_, vm)| vm["enable"] != json!(false)).map(|(n, _)| n).collect();
        assert!(!enabled.is_empty(), "{name}");
        for vm in enabled {
            assert!(plan.contains(&format!("+ define {vm}\n")), "{name}: no define of {vm} in:\n{plan}");
        }
    }
}

#[test]
fn nix_host_settings_are_what_vmkit_host_plan_lists() {
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let mut seen_params = 0;
    for (name, settings, _) in desktop_configs() {
        let rendered = render(&settings);
        let file = write_json(dir.path(), &name, &rendered);
        let expected = host_plan(&file, empty.path());
        let actual = nix_host(&rendered);
        assert_eq!(actual, expected, "{name}: desktop-host.nix and `vmkit desktop host-plan` disagree");
        seen_params += expected["kernelParams"].as_array().unwrap().len();
    }
    // The configs cover huge pages of both sizes, passthrough with and without a CPU vendor, vfio, macOS, Looking
    // Glass and firewallPorts.
    assert!(seen_params >= 15, "{seen_params}");
}

// --- image recipes -------------------------------------------------------------------------------------------

/// The recipe (as vmkit validated it) of a TOML file.
fn checked_recipe(file: &Path) -> Value {
    serde_json::from_str(&vmkit_ok(&["image", "check", "--json", &file.display().to_string()])).unwrap()
}

#[test]
fn nix_recipes_render_to_toml_vmkit_accepts() {
    let dir = tempfile::tempdir().unwrap();
    // The Ubuntu example as a Nix attribute set, with the cloud image already fetched (a file:// URL, as
    // lib.mkImage passes the fixed-output download).
    let cases = [
        (
            "ubuntu-24.04",
            r#"{
              name = "ubuntu-24.04"; hostname = "ubuntu"; username = "agent"; sshPort = 2222; memory = 2048; cpus = 2;
              diskSize = "20G"; installNix = false;
              source.cloudImage = { url = "https://cloud-images.ubuntu.com/releases/noble/release-20260615/ubuntu-24.04-server-cloudimg-amd64.img";
                sha256 = "5fa5b05e5ec239858c4531485d6023b0896448c2df7c63b34f8dae6ea6051a44"; };
              provision = { packages = [ "htop" ]; commands = [ "echo 'vmkit image' > /etc/vmkit-image" ]; };
            }"#,
            Some("examples/ubuntu-24.04.toml"),
        ),
        (
            "debian-12",
            r#"{
              name = "debian-12"; hostname = "debian-12"; username = "agent"; sshPort = 2222; memory = 2048; cpus = 2;
              diskSize = "20G"; installNix = false;
              source.debian = { suite = "bookworm"; packages = [ "less" "curl" ]; };
              provision = {
                files = [ { path = "/etc/motd"; content = "Built by vmkit from examples/debian-12.toml.\n"; mode = "0644"; } ];
                commands = [ "echo 'vmkit image' > /etc/vmkit-image" ];
              };
            }"#,
            Some("examples/debian-12.toml"),
        ),
        (
            "quoting",
            r#"{
              name = "quoting"; username = "agent";
              source.ubuntu = { version = "24.04"; codename = "noble"; build = "20260615";
                sha256 = "5fa5b05e5ec239858c4531485d6023b0896448c2df7c63b34f8dae6ea6051a44"; };
              provision.files = [ { path = "/etc/x"; content = "quotes \" and \\ and \${x} and \t tab\nand é ✓\n"; } ];
              provision.commands = [ "printf '%s\\n' \"$HOME\" > /tmp/x" ];
            }"#,
            None,
        ),
    ];
    for (name, attrs, toml) in cases {
        let text = eval_json(&format!("(import ./nix/recipe.nix).toTOML ({attrs})"));
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(&file, text.as_str().unwrap()).unwrap();
        let from_nix = checked_recipe(&file);
        if let Some(toml) = toml {
            assert_eq!(from_nix, checked_recipe(&root().join(toml)), "{name}");
        } else {
            let content = &from_nix["provision"]["files"][0]["content"];
            assert_eq!(content, &json!("quotes \" and \\ and ${x} and \t tab\nand é ✓\n"));
            assert_eq!(from_nix["provision"]["commands"][0], json!("printf '%s\\n' \"$HOME\" > /tmp/x"));
        }
    }
    // A recipe vmkit refuses is bad input, at its position, before anything is made.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"bad\"\nusername = \"agent\"\nsshPort = 0\nsource.cloudImage = { url = \"https://x/y.img\", sha256 = \"00\" }\n").unwrap();
    let (code, _, err) = vmkit(&["image", "check", &bad.display().to_string()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{}:3:11:", bad.display())), "{err}");
    // The Ubuntu source's URL is the one vmkit's fetcher derives.
    let url = eval_json(
        r#"(import ./nix/recipe.nix).ubuntuUrl { version = "24.04"; codename = "noble"; build = "20260615"; }"#,
    );
    assert_eq!(
        url,
        json!("https://cloud-images.ubuntu.com/releases/noble/release-20260615/ubuntu-24.04-server-cloudimg-amd64.img")
    );
}

#[test]
fn nix_recipes_that_cannot_build_in_the_sandbox_are_refused_by_name() {
    for (attrs, why) in [
        (r#"{ name = "d"; username = "u"; source.debian.suite = "bookworm"; }"#, "source.debian"),
        (
            r#"{ name = "p"; username = "u"; source.cloudImage = { url = "https://x/y.img"; sha256 = "00"; }; provision.packages = [ "htop" ]; }"#,
            "provision.packages",
        ),
        (
            r#"{ name = "n"; username = "u"; installNix = true; source.cloudImage = { url = "https://x/y.img"; sha256 = "00"; }; }"#,
            "installNix",
        ),
        (
            r#"{ name = "k"; username = "u"; sshKey = "/home/u/.ssh/id"; source.cloudImage = { url = "https://x/y.img"; sha256 = "00"; }; }"#,
            "sshKey",
        ),
        (r#"{ name = "t"; username = "u"; sorce = { }; }"#, "sorce"),
    ] {
        let mut cmd = nix_instantiate();
        cmd.args(["--eval", "--strict", "--json", "-E", &format!("(import ./nix/recipe.nix).forSandbox ({attrs})")]);
        let err = run_nix(cmd).expect_err(attrs);
        assert!(err.contains(why), "{attrs}: {err}");
    }
}

/// `nix/images.nix` with stand-ins for the three nixpkgs functions it calls (mkDerivation returns its attributes,
/// fetchurl and writeText an attribute set with a store path), so the derivation's shape is checked without
/// nixpkgs. Building it needs Nix with nixpkgs and a builder with the `kvm` feature (docs/nix.md).
#[test]
fn nix_image_derivations_run_vmkit_on_the_fixed_output_base() {
    let dir = tempfile::tempdir().unwrap();
    let sha = "5fa5b05e5ec239858c4531485d6023b0896448c2df7c63b34f8dae6ea6051a44";
    let images = r#"import ./nix/images.nix {
        stdenvNoCC.mkDerivation = a: a;
        fetchurl = a: a // { outPath = "/nix/store/00000000000000000000000000000000-${a.name}"; };
        writeText = name: text: { inherit name text; outPath = "/nix/store/00000000000000000000000000000000-${name}"; };
        vmkit = { version = "0.1.0"; outPath = "/nix/store/00000000000000000000000000000000-vmkit"; };
      }"#;
    for (call, url) in [
        (
            format!(
                r#"mkUbuntuImage {{ name = "ci"; username = "agent"; version = "24.04"; codename = "noble"; build = "20260615"; sha256 = "{sha}"; cpus = 4; }}"#
            ),
            "https://cloud-images.ubuntu.com/releases/noble/release-20260615/ubuntu-24.04-server-cloudimg-amd64.img",
        ),
        (
            format!(
                r#"mkCloudImage {{ name = "ci"; username = "agent"; url = "https://example.org/x.qcow2"; sha256 = "{sha}"; cpus = 4; }}"#
            ),
            "https://example.org/x.qcow2",
        ),
    ] {
        let d = eval_json(&format!(
            "let d = ({images}).{call}; in {{ inherit (d) requiredSystemFeatures buildPhase installPhase nativeBuildInputs; \
             base = {{ inherit (d.passthru.base) url sha256; path = d.passthru.base.outPath; }}; \
             recipe = {{ inherit (d.passthru.recipeFile) text; path = d.passthru.recipeFile.outPath; }}; }}"
        ));
        assert_eq!(d["requiredSystemFeatures"], json!(["kvm"]));
        // The base image is a fixed-output fetch of the recipe's URL and SHA-256 …
        assert_eq!(d["base"]["url"], json!(url));
        assert_eq!(d["base"]["sha256"], json!(sha));
        // … handed to vmkit as a file:// URL with the same digest, in a recipe vmkit accepts.
        let file = dir.path().join("ci.toml");
        std::fs::write(&file, d["recipe"]["text"].as_str().unwrap()).unwrap();
        let recipe = checked_recipe(&file);
        let base = d["base"]["path"].as_str().unwrap();
        assert_eq!(recipe["source"]["cloudImage"], json!({ "url": format!("file://{base}"), "sha256": sha }));
        assert_eq!((recipe["name"].clone(), recipe["cpus"].clone()), (json!("ci"), json!(4)));
        let build = d["buildPhase"].as_str().unwrap();
        let recipe_path = d["recipe"]["path"].as_str().unwrap();
        assert!(build.contains(&format!("vmkit image build {recipe_path} --out image")), "{build}");
        assert!(build.contains("VMKIT_CACHE_DIR=$TMPDIR/"), "{build}");
        assert!(d["installPhase"].as_str().unwrap().contains("mv image $out"));
        // The build phase, run with this vmkit and the recipe file in place of the store path, is a command line
        // vmkit takes: it gets as far as opening the base image (which only the fixed-output fetch provides).
        let tmp = tempfile::tempdir().unwrap();
        let script = format!("runHook() {{ :; }}\n{}", build.replace(recipe_path, &file.display().to_string()));
        let bin_dir = vmkit_bin().parent().unwrap().display().to_string();
        let out = Command::new("bash")
            .args(["-euc", &script])
            .current_dir(tmp.path())
            .env("TMPDIR", tmp.path())
            .env("PATH", format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default()))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&format!("opening {base}")), "{stderr}");
        assert!(!tmp.path().join("image").exists());
    }
}

// --- the whole module, with nixpkgs' lib ---------------------------------------------------------------------

/// Evaluates nix/tests/module-eval.nix with nixpkgs' lib.
#[cfg(vmkit_nixpkgs_lib)]
fn module_eval(lib: &str, settings: &str, extra: &str) -> Result<Value, String> {
    let mut cmd = nix_instantiate();
    cmd.args(["--eval", "--strict", "--json", "nix/tests/module-eval.nix"])
        .args(["--arg", "lib", &format!("import {}", nix_str(lib))])
        .args(["--arg", "settings", settings])
        .args(["--arg", "extra", extra]);
    run_nix(cmd).map(|out| serde_json::from_str(&out).unwrap())
}

#[test]
#[cfg_attr(not(vmkit_nixpkgs_lib), ignore = "set VMKIT_NIXPKGS_LIB=/path/to/nixpkgs/lib to evaluate the NixOS module")]
fn nix_module_full_eval() {
    #[cfg(vmkit_nixpkgs_lib)]
    full_eval();
}

/// Runs the module's command lines with this vmkit and the rendered file in place of the store paths: the
/// launchers' build script (in a shell, with `$out`) must write a `vm-<name>` per enabled VM, and the unit's
/// command line must be one vmkit takes (run as `plan`, which shares apply's arguments, so nothing is defined).
#[cfg(vmkit_nixpkgs_lib)]
fn run_module_commands(name: &str, exec: &str, launchers: &str, config: &Path, rendered: &Value) {
    let stub_vmkit = "/nix/store/00000000000000000000000000000000-vmkit-0.1.0/bin/vmkit";
    let stub_config = "/nix/store/00000000000000000000000000000000-vmkit-desktop-vms.json";
    let vmkit = vmkit_bin().display().to_string();
    let config = config.display().to_string();
    let out = tempfile::tempdir().unwrap();
    let script = launchers.replace(stub_vmkit, &vmkit).replace(stub_config, &config);
    let bin_dir = vmkit_bin().parent().unwrap().display().to_string();
    let status = Command::new("sh")
        .args(["-euc", &script])
        .env("out", out.path())
        .env("PATH", format!("{bin_dir}:{}", std::env::var("PATH").unwrap_or_default()))
        .status()
        .unwrap();
    assert!(status.success(), "{name}: the launchers' build script failed:\n{script}");
    let enabled: Vec<&String> = rendered["vms"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, vm)| vm["enable"] != json!(false))
        .map(|(n, _)| n)
        .collect();
    let mut written: Vec<String> = std::fs::read_dir(out.path().join("bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    let mut want: Vec<String> = enabled.iter().map(|n| format!("vm-{n}")).collect();
    want.sort();
    assert_eq!(written, want, "{name}");
    for w in &written {
        let text = std::fs::read_to_string(out.path().join("bin").join(w)).unwrap();
        assert!(text.contains(&vmkit) && text.contains(&config), "{name}: {text}");
    }
    let words: Vec<String> = exec
        .replace(stub_vmkit, &vmkit)
        .replace(stub_config, &config)
        .split(' ')
        .map(|w| w.trim_matches('\'').to_owned())
        .collect();
    assert_eq!(words[0], vmkit);
    assert_eq!(words[2], "apply");
    let mut args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    args[1] = "plan";
    args.push("--skip-path-checks");
    vmkit_ok(&args);
}

#[cfg(vmkit_nixpkgs_lib)]
fn full_eval() {
    let lib = std::env::var("VMKIT_NIXPKGS_LIB")
        .unwrap_or_else(|_| panic!("VMKIT_NIXPKGS_LIB was set when the test was built but is not set now"));
    assert!(Path::new(&lib).join("modules.nix").is_file(), "{lib} is not nixpkgs' lib directory");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("nix/desktop-options.json")).unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();

    // The firmware and virtiofsd this host's vmkit discovers, so the module's JSON and the TOML give the same XML
    // (the module otherwise takes them from nixpkgs).
    let fw = desktop::model::FirmwarePaths::discover(Path::new("/"));
    let host_paths = format!(
        "{{ virtualisation.desktopVMs = {{ ovmf = {{ secureCode = {}; secureVars = {}; code = {}; vars = {}; }}; virtiofsd = {}; }}; }}",
        nix_str(&fw.secure_code.display().to_string()),
        nix_str(&fw.secure_vars.display().to_string()),
        nix_str(&fw.code.display().to_string()),
        nix_str(&fw.vars.display().to_string()),
        nix_str(&desktop::discover::virtiofsd(Path::new("/")).display().to_string()),
    );

    for (name, settings, toml) in desktop_configs() {
        let out = module_eval(&lib, &settings, &host_paths).unwrap_or_else(|e| panic!("{name}: {e}"));
        let file = write_json(dir.path(), &format!("module-{name}"), &out["rendered"]);
        if let Some(toml) = &toml {
            assert_eq!(xml(&file), xml(toml), "{name}: the module's JSON gives other domains than the TOML");
        } else {
            assert!(xml(&file).contains("<domain"));
        }
        // The host settings become NixOS options, equal to vmkit's host plan.
        let plan = host_plan(&file, empty.path());
        assert_eq!(out["kernelParams"], plan["kernelParams"], "{name}");
        assert_eq!(out["sysctl"], plan["sysctl"], "{name}");
        assert_eq!(out["tmpfiles"], plan["tmpfiles"], "{name}");
        let mounts: Vec<Value> = plan["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| json!([m["target"], { "device": m["what"], "fsType": m["fstype"], "options": [m["options"], "nofail"] }]))
            .collect();
        let fs: Vec<Value> =
            out["fileSystems"].as_object().unwrap().iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>();
        assert_eq!(fs, mounts, "{name}");
        assert_eq!(out["failedAssertions"], json!([]), "{name}");
        assert_eq!(out["libvirtd"], json!(true));
        let unit = &out["unit"];
        assert_eq!(unit["after"], json!(["libvirtd.service"]));
        assert_eq!(unit["Type"], json!("oneshot"));
        let exec = unit["ExecStart"].as_str().unwrap();
        assert!(exec.contains("/bin/vmkit desktop apply --connect qemu:///system /nix/store/"), "{exec}");
        assert!(!exec.contains("--prune"), "{exec}");
        let launchers = out["launchers"][0].as_str().unwrap();
        assert!(launchers.starts_with("vmkit desktop scripts --skip-path-checks"), "{launchers}");
        run_module_commands(&name, exec, launchers, &file, &out["rendered"]);
    }

    // The Nix-written config: warnings for what the host plan only notes, vfio in the initrd.
    let ws = format!("import {}", nix_str(&root().join("nix/tests/desktop/workstation.nix").display().to_string()));
    let out = module_eval(&lib, &ws, "{ }").unwrap();
    let warnings = out["warnings"].to_string();
    assert!(
        warnings.contains("gpuPassthrough.cpuVendor is not set") && warnings.contains("firewallPorts"),
        "{warnings}"
    );
    assert_eq!(out["initrdKernelModules"], json!(["vfio_pci", "vfio", "vfio_iommu_type1"]));
    assert!(out["rendered"]["ovmf"]["secureCode"].as_str().unwrap().ends_with("-OVMF-fd/FV/OVMF_CODE.ms.fd"));
    assert_eq!(out["rendered"]["firewallPorts"], json!({ "spice": true, "vnc": false }));
    // firewallPorts reaches vmkit only when set; prune only when asked.
    let out =
        module_eval(&lib, "{ enable = true; vms.a = { }; }", "{ virtualisation.desktopVMs.prune = true; }").unwrap();
    assert!(out["rendered"].get("firewallPorts").is_none(), "{}", out["rendered"]);
    assert!(out["unit"]["ExecStart"].as_str().unwrap().ends_with(" --prune"));
    assert_eq!(out["warnings"], json!([]));
    let out = module_eval(&lib, "{ enable = false; vms.a = { }; }", "{ }").unwrap();
    assert_eq!(out["unit"], Value::Null, "a disabled module runs nothing");

    // The options are the schema's: names, defaults, descriptions and nullability.
    let options = out["options"].as_array().unwrap();
    let mut schema_opts = Vec::new();
    fn flatten(opts: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
        for o in opts.as_array().unwrap() {
            let path = format!("{prefix}{}", o["name"].as_str().unwrap());
            out.push((path.clone(), o.clone()));
            let t = &o["type"];
            if t["kind"] == "submodule" {
                flatten(&t["options"], &format!("{path}."), out);
            } else if t["kind"] == "attrs" && t["of"]["kind"] == "submodule" {
                flatten(&t["of"]["options"], &format!("{path}.<name>."), out);
            }
        }
    }
    flatten(&schema["options"], "", &mut schema_opts);
    let declared: Vec<&Value> = options.iter().filter(|o| o.get("description").is_some()).collect();
    assert_eq!(declared.len(), schema_opts.len());
    for o in options.iter().filter(|o| o.get("extra").is_some()) {
        assert_eq!((&o["extra"], &o["missing"]), (&json!([]), &json!([])), "{}", o["path"]);
    }
    for (m, (path, s)) in declared.iter().zip(&schema_opts) {
        assert_eq!(m["path"].as_str().unwrap(), path);
        assert!(m["description"].as_str().unwrap().starts_with(s["description"].as_str().unwrap()), "{path}");
        let required = s["required"] == json!(true);
        assert_eq!(m["hasDefault"], json!(!required), "{path}");
        if !required {
            assert_eq!(m["default"], s["default"], "{path}");
        }
        let nullable = !required && s["default"].is_null();
        assert_eq!(m["type"].as_str().unwrap().starts_with("null or "), nullable, "{path}: {}", m["type"]);
    }

    // Bad values are type errors at the option's path; bad names fail an assertion that names them.
    for (settings, expect) in [
        (
            r#"{ enable = true; vms.win.memory = "16 GB"; }"#,
            "`virtualisation.desktopVMs.vms.win.memory' is not of type `size",
        ),
        (
            r#"{ enable = true; vms.win.vcpus = 0; }"#,
            "`virtualisation.desktopVMs.vms.win.vcpus' is not of type `integer between 1 and 255",
        ),
        (
            r#"{ profile = "sometimes"; }"#,
            "`virtualisation.desktopVMs.profile' is not of type `one of \"occasional\", \"always-on\"'",
        ),
        (
            r#"{ enable = true; vms.a.pciDevices = [ "01:00" ]; }"#,
            "`virtualisation.desktopVMs.vms.a.pciDevices.\"[definition 1-entry 1]\"' is not of type `pci-address",
        ),
        (r#"{ enable = true; vms.a.cpuPinning = [ "0-3,x" ]; }"#, "is not of type `cpuset"),
        (r#"{ enable = true; vms.a.memroy = "1G"; }"#, "virtualisation.desktopVMs.vms.a.memroy' does not exist"),
        (r#"{ enable = true; hugepages.size = "4M"; }"#, "`virtualisation.desktopVMs.hugepages.size' is not of type"),
    ] {
        let err = module_eval(&lib, settings, "{ }").expect_err(settings);
        assert!(err.contains(expect), "{settings}:\n{err}");
    }
    let out = module_eval(&lib, r#"{ enable = true; vms."a b" = { sharedFolders."x y" = "/srv"; }; }"#, "{ }").unwrap();
    let failed = out["failedAssertions"].to_string();
    assert!(failed.contains("virtualisation.desktopVMs.vms.\\\"a b\\\": invalid VM name"), "{failed}");
    assert!(failed.contains("sharedFolders.\\\"x y\\\": invalid tag"), "{failed}");
}

#[test]
#[cfg_attr(not(vmkit_nixpkgs_lib), ignore = "set VMKIT_NIXPKGS_LIB=/path/to/nixpkgs/lib to evaluate the flake")]
fn nix_flake_outputs_eval() {
    #[cfg(vmkit_nixpkgs_lib)]
    flake_eval();
}

/// The flake's outputs with nixpkgs' lib and the stand-in package set of nix/tests/flake-eval.nix.
#[cfg(vmkit_nixpkgs_lib)]
fn flake_eval() {
    let lib = std::env::var("VMKIT_NIXPKGS_LIB")
        .unwrap_or_else(|_| panic!("VMKIT_NIXPKGS_LIB was set when the test was built but is not set now"));
    let mut cmd = nix_instantiate();
    cmd.args(["--eval", "--strict", "--json", "nix/tests/flake-eval.nix"]).args([
        "--arg",
        "lib",
        &format!("import {}", nix_str(&lib)),
    ]);
    let out: Value = serde_json::from_str(&run_nix(cmd).unwrap_or_else(|e| panic!("{e}"))).unwrap();
    assert_eq!(out["inputs"], json!(["nixpkgs"]), "no inputs beyond nixpkgs");
    assert_eq!(out["systems"], json!(["x86_64-linux"]));
    let p = &out["package"];
    assert_eq!(p["pname"], json!("vmkit"));
    let version = vmkit_ok(&["--version"]);
    assert_eq!(version.trim(), format!("vmkit {}", p["version"].as_str().unwrap()));
    assert_eq!(p["lockFile"], json!(root().join("Cargo.lock").display().to_string()));
    assert_eq!(p["nativeBuildInputs"], json!(["pkg-config", "clang", "bindgen-hook", "makeWrapper"]));
    assert_eq!(p["buildInputs"], json!(["tesseract", "leptonica", "libvirt"]));
    for tool in ["qemu", "swtpm", "xorriso", "e2fsprogs", "openssh", "libvirt"] {
        assert!(p["runtimeTools"].as_array().unwrap().contains(&json!(tool)), "{tool}");
        assert!(p["postInstall"].as_str().unwrap().contains(&format!("-{tool}/bin")), "{tool}: {}", p["postInstall"]);
    }
    assert!(p["postInstall"].as_str().unwrap().contains("wrapProgram $out/bin/$program"));
    assert!(p["installCheckPhase"].as_str().unwrap().contains("desktop schema --json"));
    assert_eq!(out["sameAsVmkit"], json!(true));
    assert!(out["apps"]["default"]["program"].as_str().unwrap().ends_with("-vmkit-0.1.0/bin/vmkit"));
    assert_eq!(out["devShell"]["inputsFrom"], json!(["vmkit-0.1.0"]));
    assert_eq!(out["overlay"], json!("vmkit"));
    assert_eq!(out["module"]["imports"], json!([root().join("nix/module.nix").display().to_string()]));
    assert_eq!(out["module"]["package"], json!("vmkit-0.1.0"));
    assert_eq!(out["image"]["requiredSystemFeatures"], json!(["kvm"]));
    assert!(out["image"]["recipe"].as_str().unwrap().contains("url = \"file:///nix/store/"));
    assert_eq!(out["checks"], json!(["vmkit"]));
}
