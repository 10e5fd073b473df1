//! The seed checked by the programs that consume or inspect it, not by our own parser: `cloud-init schema` (every
//! generated user-data must be a valid cloud-config), PyYAML (the loader cloud-init uses: tricky strings must come
//! back as the same strings), `cloud-init devel net-convert` (network-config), and `isoinfo`, `xorriso`, `blkid`,
//! `mdir`/`mtype` and `fsck.fat` (the seed images).

use std::path::Path;
use std::process::Command;

use cloudinit::{CloudConfig, KeyPair, NetworkConfig, RunCommand, Seed, SeedFormat, User, WriteFile};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e} (is its Debian package installed?)"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every shape of config the builders produce, plus one full of hostile strings.
fn configs() -> Vec<(&'static str, CloudConfig)> {
    let key = KeyPair::generate("vmkit@test").unwrap().public_openssh();
    let mut minimal = CloudConfig::new("ci-runner");
    minimal.users.push(User::admin("agent", vec![key.clone()]));

    let mut full = minimal.clone();
    full.hostname = "build-01.example.org".into();
    full.packages = vec!["htop".into(), "curl".into()];
    full.timezone = Some("Etc/UTC".into());
    full.users[0].groups = vec!["adm".into()];
    full.users.push(User { sudo: false, ..User::admin("second", vec![key]) });
    full.write_files.push(WriteFile {
        path: "/etc/vmkit/built-by".into(),
        content: "vmkit\n".into(),
        permissions: Some(0o600),
        owner: Some("root:root".into()),
        append: false,
    });
    full.runcmd.push(RunCommand::Exec(vec!["systemctl".into(), "enable".into(), "ssh".into()]));
    full.runcmd.push(RunCommand::Shell("echo ok > /var/tmp/ok".into()));

    let mut tricky = minimal.clone();
    tricky.write_files.push(WriteFile {
        path: "/tmp/yes".into(),
        content: tricky_text(),
        permissions: Some(0o644),
        owner: None,
        append: true,
    });
    tricky.runcmd = tricky_strings().into_iter().map(|s| RunCommand::Exec(vec!["echo".into(), s])).collect();
    vec![("minimal", minimal), ("full", full), ("tricky", tricky)]
}

fn tricky_strings() -> Vec<String> {
    [
        "yes",
        "no",
        "on",
        "off",
        "y",
        "n",
        "true",
        "~",
        "null",
        "0644",
        "0x1F",
        "1e3",
        "2024-01-01",
        "12:30:00",
        "- item",
        "key: value",
        "# comment",
        "&anchor",
        "*alias",
        "!tag",
        "|",
        ">",
        "'single'",
        "\"double\"",
        "tab\there",
        "multi\nline\n",
        " leading space",
        "trailing space ",
        "%percent",
        "@at",
        "`backtick`",
        "{flow}",
        "[list]",
        "ünïcödé ✓",
        "",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

fn tricky_text() -> String {
    tricky_strings().join("\n")
}

#[test]
fn every_generated_user_data_passes_cloud_init_schema() {
    let dir = tempfile::tempdir().unwrap();
    for (name, config) in configs() {
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, config.render().unwrap()).unwrap();
        let out = run(Command::new("cloud-init").arg("schema").arg("--config-file").arg(&path));
        assert!(out.contains("Valid cloud-config"), "{name}: {out}");
    }
}

#[test]
fn schema_check_really_rejects_a_bad_document() {
    // The acceptance check above is only worth something if the validator can say no.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "#cloud-config\nusers:\n  - name: agent\n    lock_passwd: maybe\n").unwrap();
    let out = Command::new("cloud-init").arg("schema").arg("--config-file").arg(&path).output().unwrap();
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn pyyaml_reads_back_exactly_the_strings_we_wrote() {
    let (_, config) = configs().into_iter().find(|(n, _)| *n == "tricky").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("user-data");
    std::fs::write(&path, config.render().unwrap()).unwrap();
    // Print what PyYAML (cloud-init's loader) sees as JSON, and compare with our inputs.
    let script = "import json,sys,yaml; d=yaml.safe_load(open(sys.argv[1])); \
                  print(json.dumps({'runcmd': d['runcmd'], 'content': d['write_files'][0]['content'], \
                  'permissions': d['write_files'][0]['permissions'], 'lock': d['users'][0]['lock_passwd'], \
                  'pwauth': d['ssh_pwauth'], 'locale': d['locale'], 'hosts': d['manage_etc_hosts']}))";
    let json = run(Command::new("python3").arg("-c").arg(script).arg(&path));
    let expected_runcmd: Vec<Vec<String>> = tricky_strings().into_iter().map(|s| vec!["echo".into(), s]).collect();
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    let runcmd: Vec<Vec<String>> = serde_json::from_value(parsed["runcmd"].clone()).unwrap();
    assert_eq!(runcmd, expected_runcmd);
    assert_eq!(parsed["content"], tricky_text());
    assert_eq!(parsed["permissions"], "0644");
    assert_eq!(parsed["lock"], true);
    assert_eq!(parsed["pwauth"], false);
    assert_eq!(parsed["locale"], "C.UTF-8");
    assert_eq!(parsed["hosts"], true);
}

#[test]
fn network_config_is_understood_by_cloud_init() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("network-config");
    std::fs::write(&path, NetworkConfig::dhcp_on_mac("52:54:00:12:34:56", "eth0").render().unwrap()).unwrap();
    let out = dir.path().join("out");
    run(Command::new("cloud-init")
        .args(["devel", "net-convert", "--kind", "yaml", "--distro", "debian", "--output-kind", "eni"])
        .arg("--network-data")
        .arg(&path)
        .arg("--directory")
        .arg(&out));
    let eni = std::fs::read_to_string(out.join("etc/network/interfaces.d/50-cloud-init")).unwrap();
    assert!(eni.contains("iface eth0 inet dhcp"), "{eni}");
    let rules = std::fs::read_to_string(out.join("etc/udev/rules.d/70-persistent-net.rules")).unwrap();
    assert!(rules.contains("52:54:00:12:34:56") && rules.contains("NAME=\"eth0\""), "{rules}");
}

fn seed() -> Seed {
    let net = NetworkConfig::dhcp_on_mac("52:54:00:12:34:56", "eth0");
    let (_, config) = configs().into_iter().next().unwrap();
    Seed::new(&config, Some(&net)).unwrap()
}

fn write_seed(dir: &Path, format: SeedFormat) -> (Seed, std::path::PathBuf) {
    let seed = seed();
    let path = dir.join(match format {
        SeedFormat::Iso => "seed.iso",
        SeedFormat::Vfat => "seed.img",
    });
    seed.write_image(&path, format).unwrap();
    (seed, path)
}

#[test]
fn iso_seed_is_read_back_by_isoinfo_xorriso_and_blkid() {
    let dir = tempfile::tempdir().unwrap();
    let (seed, iso) = write_seed(dir.path(), SeedFormat::Iso);

    let pvd = run(Command::new("isoinfo").arg("-d").arg("-i").arg(&iso));
    assert!(pvd.contains("Volume id: cidata"), "{pvd}");
    assert!(pvd.contains("Rock Ridge signatures version"), "no Rock Ridge: {pvd}");
    assert!(pvd.contains("Joliet with UCS level"), "no Joliet: {pvd}");

    for (flag, what) in [("-R", "Rock Ridge"), ("-J", "Joliet")] {
        let listing = run(Command::new("isoinfo").arg(flag).arg("-f").arg("-i").arg(&iso));
        for name in ["/user-data", "/meta-data", "/network-config"] {
            assert!(listing.lines().any(|l| l == name), "{what} listing lacks {name}:\n{listing}");
        }
        for (name, data) in seed.files() {
            let got = Command::new("isoinfo").arg(flag).arg("-i").arg(&iso).arg("-x").arg(format!("/{name}")).output();
            assert_eq!(got.unwrap().stdout, data, "{what}: contents of {name}");
        }
    }

    let out = dir.path().join("x");
    run(Command::new("xorriso").arg("-osirrox").arg("on").arg("-indev").arg(&iso).arg("-extract").arg("/").arg(&out));
    assert_eq!(std::fs::read_to_string(out.join("user-data")).unwrap(), seed.user_data);
    assert_eq!(std::fs::read_to_string(out.join("meta-data")).unwrap(), seed.meta_data);

    let blkid = run(Command::new("blkid").arg("-p").arg("-o").arg("export").arg(&iso));
    assert!(blkid.contains("TYPE=iso9660"), "{blkid}");
    assert!(blkid.contains("LABEL=cidata"), "{blkid}");
}

#[test]
fn vfat_seed_is_read_back_by_mtools_blkid_and_fsck() {
    let dir = tempfile::tempdir().unwrap();
    let (seed, img) = write_seed(dir.path(), SeedFormat::Vfat);

    let blkid = run(Command::new("blkid").arg("-p").arg("-o").arg("export").arg(&img));
    assert!(blkid.contains("TYPE=vfat"), "{blkid}");
    assert!(blkid.contains("LABEL=CIDATA"), "{blkid}");

    let img_arg = format!("{}", img.display());
    let listing = run(Command::new("mdir").arg("-b").arg("-i").arg(&img_arg).arg("::/"));
    for name in ["::/user-data", "::/meta-data", "::/network-config"] {
        assert!(listing.lines().any(|l| l == name), "mdir lacks {name}:\n{listing}");
    }
    for (name, data) in seed.files() {
        let got = Command::new("mtype").arg("-i").arg(&img_arg).arg(format!("::/{name}")).output().unwrap();
        assert_eq!(got.stdout, data, "contents of {name}");
    }
    run(Command::new("fsck.fat").arg("-n").arg(&img));
}

#[test]
fn meta_data_names_host_and_instance() {
    let seed = seed();
    assert!(seed.meta_data.contains(&format!("instance-id: {}", seed.instance_id)), "{}", seed.meta_data);
    assert!(seed.meta_data.contains("local-hostname: ci-runner"), "{}", seed.meta_data);
    // A different config gives a different instance id, so cloud-init applies it.
    let mut other = CloudConfig::new("ci-runner");
    other.users.push(User::admin("agent2", vec![]));
    assert_ne!(Seed::new(&other, None).unwrap().instance_id, seed.instance_id);
}
