//! Windows recipes and the artefacts made from them before anything boots: the example recipes load, the answer
//! file puts every setting in the pass and component Microsoft's unattend reference documents (checked against a
//! table), is well-formed for xmllint, escapes every value, and matches its snapshot; the answer media reads back
//! with mtools and passes fsck.fat.

use std::path::{Path, PathBuf};
use std::process::Command;

use images::recipe::{EditionChoice, MediaSource, Recipe, Source, WindowsSource, WindowsVersion};
use images::windows::answer::{self, AnswerFile, LabBypass, MachineFacts, Password};

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// The example recipes, copied next to a password file (the repository ships none).
fn example(name: &str, dir: &Path) -> Recipe {
    std::fs::copy(examples_dir().join(name), dir.join(name)).unwrap();
    std::fs::write(dir.join("windows-password"), "example-password\n").unwrap();
    Recipe::load(&dir.join(name)).unwrap_or_else(|e| panic!("{e}"))
}

fn windows(recipe: &Recipe) -> &WindowsSource {
    match &recipe.source {
        Source::Windows(w) => w,
        other => panic!("{other:?}"),
    }
}

#[test]
fn example_recipes_load_with_their_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let r11 = example("windows-11.toml", dir.path());
    let w = windows(&r11);
    assert_eq!(w.version, WindowsVersion::Win11);
    assert!(w.tpm && w.secure_boot);
    assert_eq!(w.edition, EditionChoice::Name("Pro".into()));
    assert_eq!(w.iso, Some(MediaSource::Path(dir.path().join("Win11_24H2_English_x64.iso"))));
    assert_eq!(w.virtio, Some(MediaSource::Path(dir.path().join("virtio-win-0.1.271.iso"))));
    assert_eq!((r11.memory, r11.disk_bytes, w.max_install_secs), (8192, 64 << 30, 4 * 3600));

    let r10 = example("windows-10.toml", dir.path());
    let w = windows(&r10);
    assert_eq!(w.version, WindowsVersion::Win10);
    assert!(!w.tpm && w.secure_boot);
    assert_eq!(w.edition, EditionChoice::Index(6));
    assert_eq!(w.computer_name, "windows-10");
    assert_eq!(w.keyboard, "0407:00000407");
}

#[test]
fn windows_recipe_errors_point_at_the_culprit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "x\n").unwrap();
    let file = dir.path().join("w.toml");
    let base = "name = \"win\"\nusername = \"agent\"\n[source.windows]\nversion = 11\nedition = \"Pro\"\npasswordFile = \"pw\"\n";
    let cases: Vec<(String, usize, usize, &str)> = vec![
        (base.replace("version = 11", "version = 12"), 4, 11, "expected 10 or 11"),
        (base.replace("\"Pro\"", "0"), 5, 11, "edition"),
        (base.replace("\"pw\"", "\"nope\""), 6, 16, "passwordFile: no such file"),
        (base.replace("\"agent\"", "\"Administrator\""), 2, 12, "built-in"),
        (base.replace("\"agent\"", "\"a/b\""), 2, 12, "Windows account name"),
        (format!("{base}computerName = \"THIS-NAME-IS-TOO-LONG\"\n"), 7, 16, "computer name"),
        (format!("{base}timeZone = \"Europe/<Berlin>\"\n"), 7, 12, "timeZone"),
        (format!("{base}locale = \"english\"\n"), 7, 10, "locale"),
        (format!("{base}iso = {{ url = \"https://x/y.iso\" }}\n"), 7, 7, "both `url` and `sha256`"),
        (format!("{base}virtio = {{ url = \"ftp://x/y.iso\", sha256 = \"{}\" }}\n", "ab".repeat(32)), 7, 10, "virtio"),
        (format!("{base}maxInstallTime = \"forever\"\n"), 7, 18, "maxInstallTime"),
        (format!("{base}productKey = \"\"\n"), 7, 1, "unknown key `source.windows.productKey`"),
        (format!("{base}[provision]\npackages = [\"curl\"]\n"), 8, 13, "not available for a Windows source"),
        (base.replace("name = \"win\"", "name = \"a-very-long-windows-name\""), 1, 8, "computerName"),
    ];
    for (text, line, column, needle) in cases {
        std::fs::write(&file, &text).unwrap();
        let err = Recipe::load(&file).unwrap_err();
        let msg = err.first().unwrap_or_else(|| panic!("{err}")).to_string();
        assert!(msg.contains(needle), "{msg}\n{text}");
        assert!(msg.starts_with(&format!("{}:{line}:{column}: error: ", file.display())), "{msg}");
    }
}

/// Microsoft's unattend reference: every setting vmkit writes, the pass it is valid in, and its component.
/// (Paths are relative to the component; list items and their children included.)
const DOCUMENTED: &[(&str, &str, &str)] = &[
    ("SetupUILanguage/UILanguage", "windowsPE", "Microsoft-Windows-International-Core-WinPE"),
    ("InputLocale", "windowsPE", "Microsoft-Windows-International-Core-WinPE"),
    ("SystemLocale", "windowsPE", "Microsoft-Windows-International-Core-WinPE"),
    ("UILanguage", "windowsPE", "Microsoft-Windows-International-Core-WinPE"),
    ("UserLocale", "windowsPE", "Microsoft-Windows-International-Core-WinPE"),
    ("DriverPaths/PathAndCredentials/Path", "windowsPE", "Microsoft-Windows-PnpCustomizationsWinPE"),
    ("DiskConfiguration/Disk/DiskID", "windowsPE", "Microsoft-Windows-Setup"),
    ("DiskConfiguration/Disk/WillWipeDisk", "windowsPE", "Microsoft-Windows-Setup"),
    ("DiskConfiguration/Disk/CreatePartitions/CreatePartition/Order", "windowsPE", "Microsoft-Windows-Setup"),
    ("DiskConfiguration/Disk/CreatePartitions/CreatePartition/Type", "windowsPE", "Microsoft-Windows-Setup"),
    ("DiskConfiguration/Disk/CreatePartitions/CreatePartition/Size", "windowsPE", "Microsoft-Windows-Setup"),
    ("DiskConfiguration/Disk/CreatePartitions/CreatePartition/Extend", "windowsPE", "Microsoft-Windows-Setup"),
    ("DiskConfiguration/Disk/ModifyPartitions/ModifyPartition/Order", "windowsPE", "Microsoft-Windows-Setup"),
    ("DiskConfiguration/Disk/ModifyPartitions/ModifyPartition/PartitionID", "windowsPE", "Microsoft-Windows-Setup"),
    ("DiskConfiguration/Disk/ModifyPartitions/ModifyPartition/Format", "windowsPE", "Microsoft-Windows-Setup"),
    ("DiskConfiguration/Disk/ModifyPartitions/ModifyPartition/Label", "windowsPE", "Microsoft-Windows-Setup"),
    ("DiskConfiguration/Disk/ModifyPartitions/ModifyPartition/Letter", "windowsPE", "Microsoft-Windows-Setup"),
    ("ImageInstall/OSImage/InstallFrom/MetaData/Key", "windowsPE", "Microsoft-Windows-Setup"),
    ("ImageInstall/OSImage/InstallFrom/MetaData/Value", "windowsPE", "Microsoft-Windows-Setup"),
    ("ImageInstall/OSImage/InstallTo/DiskID", "windowsPE", "Microsoft-Windows-Setup"),
    ("ImageInstall/OSImage/InstallTo/PartitionID", "windowsPE", "Microsoft-Windows-Setup"),
    ("UserData/AcceptEula", "windowsPE", "Microsoft-Windows-Setup"),
    ("UserData/FullName", "windowsPE", "Microsoft-Windows-Setup"),
    ("UserData/Organization", "windowsPE", "Microsoft-Windows-Setup"),
    ("RunSynchronous/RunSynchronousCommand/Order", "windowsPE", "Microsoft-Windows-Setup"),
    ("RunSynchronous/RunSynchronousCommand/Path", "windowsPE", "Microsoft-Windows-Setup"),
    ("RunSynchronous/RunSynchronousCommand/Description", "windowsPE", "Microsoft-Windows-Setup"),
    ("ComputerName", "specialize", "Microsoft-Windows-Shell-Setup"),
    ("TimeZone", "specialize", "Microsoft-Windows-Shell-Setup"),
    ("RunSynchronous/RunSynchronousCommand/Order", "specialize", "Microsoft-Windows-Deployment"),
    ("RunSynchronous/RunSynchronousCommand/Path", "specialize", "Microsoft-Windows-Deployment"),
    ("RunSynchronous/RunSynchronousCommand/Description", "specialize", "Microsoft-Windows-Deployment"),
    ("InputLocale", "oobeSystem", "Microsoft-Windows-International-Core"),
    ("SystemLocale", "oobeSystem", "Microsoft-Windows-International-Core"),
    ("UILanguage", "oobeSystem", "Microsoft-Windows-International-Core"),
    ("UserLocale", "oobeSystem", "Microsoft-Windows-International-Core"),
    ("OOBE/HideEULAPage", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("OOBE/HideLocalAccountScreen", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("OOBE/HideOEMRegistrationScreen", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("OOBE/HideOnlineAccountScreens", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("OOBE/HideWirelessSetupInOOBE", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("OOBE/ProtectYourPC", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("UserAccounts/LocalAccounts/LocalAccount/Name", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("UserAccounts/LocalAccounts/LocalAccount/DisplayName", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("UserAccounts/LocalAccounts/LocalAccount/Group", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("UserAccounts/LocalAccounts/LocalAccount/Password/Value", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("UserAccounts/LocalAccounts/LocalAccount/Password/PlainText", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("AutoLogon/Enabled", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("AutoLogon/LogonCount", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("AutoLogon/Username", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("AutoLogon/Password/Value", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("AutoLogon/Password/PlainText", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("FirstLogonCommands/SynchronousCommand/Order", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("FirstLogonCommands/SynchronousCommand/CommandLine", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("FirstLogonCommands/SynchronousCommand/Description", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
    ("FirstLogonCommands/SynchronousCommand/RequiresUserInput", "oobeSystem", "Microsoft-Windows-Shell-Setup"),
];

/// Every leaf setting in the XML as (path within its component, pass, component, text).
fn settings(xml: &str) -> Vec<(String, String, String, String)> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "unattend");
    assert_eq!(root.tag_name().namespace(), Some("urn:schemas-microsoft-com:unattend"));
    let mut out = Vec::new();
    for settings in root.children().filter(roxmltree::Node::is_element) {
        assert_eq!(settings.tag_name().name(), "settings");
        let pass = settings.attribute("pass").unwrap().to_owned();
        for component in settings.children().filter(roxmltree::Node::is_element) {
            assert_eq!(component.attribute("processorArchitecture"), Some("amd64"));
            assert_eq!(component.attribute("publicKeyToken"), Some("31bf3856ad364e35"));
            let name = component.attribute("name").unwrap().to_owned();
            for leaf in component.descendants().filter(|n| n.is_element() && !n.children().any(|c| c.is_element())) {
                let mut parts: Vec<&str> =
                    leaf.ancestors().take_while(|a| *a != component).map(|a| a.tag_name().name()).collect();
                parts.reverse();
                out.push((parts.join("/"), pass.clone(), name.clone(), leaf.text().unwrap_or("").to_owned()));
            }
        }
    }
    out
}

fn source(version: WindowsVersion) -> WindowsSource {
    WindowsSource {
        version,
        iso: None,
        edition: EditionChoice::Name("Pro".into()),
        virtio: None,
        password_file: PathBuf::from("pw"),
        computer_name: "WIN-VMKIT".into(),
        time_zone: "W. Europe Standard Time".into(),
        locale: "de-DE".into(),
        keyboard: "0407:00000407".into(),
        tpm: true,
        secure_boot: true,
        max_install_secs: 3600,
        automate: None,
        guest_tools: true,
    }
}

fn facts(tpm: bool, secure_boot: bool, memory_mib: u32, emulated_cpu: bool) -> MachineFacts {
    MachineFacts { tpm, secure_boot, memory_mib, disk_bytes: 64 << 30, emulated_cpu }
}

#[test]
fn every_setting_sits_in_its_documented_pass_and_component() {
    let w = source(WindowsVersion::Win11);
    let bypasses = answer::lab_bypasses(w.version, &facts(false, false, 2048, true));
    let xml = AnswerFile::new(&w, "agent", Password::new("pw"), 6, bypasses).render();
    let found = settings(&xml);
    for (path, pass, component, _) in &found {
        assert!(
            DOCUMENTED.iter().any(|(p, s, c)| p == path && s == pass && c == component),
            "{path} in pass {pass}, component {component}: not where Microsoft documents it"
        );
    }
    for (path, pass, component) in DOCUMENTED {
        assert!(
            found.iter().any(|(p, s, c, _)| p == path && s == pass && c == component),
            "{path} ({pass}, {component}) is missing"
        );
    }
    // No product key at all, the image by index, the EULA accepted, the disk layout for UEFI.
    assert!(!xml.contains("ProductKey"));
    let value = |p: &str| found.iter().filter(|(path, ..)| path == p).map(|t| t.3.clone()).collect::<Vec<_>>();
    assert_eq!(value("ImageInstall/OSImage/InstallFrom/MetaData/Key"), ["/IMAGE/INDEX"]);
    assert_eq!(value("ImageInstall/OSImage/InstallFrom/MetaData/Value"), ["6"]);
    assert_eq!(value("UserData/AcceptEula"), ["true"]);
    assert_eq!(value("DiskConfiguration/Disk/CreatePartitions/CreatePartition/Type"), ["EFI", "MSR", "Primary"]);
    assert_eq!(value("DiskConfiguration/Disk/CreatePartitions/CreatePartition/Size"), ["100", "16"]);
    assert_eq!(value("DiskConfiguration/Disk/ModifyPartitions/ModifyPartition/Format"), ["FAT32", "NTFS"]);
    assert_eq!(value("AutoLogon/LogonCount"), ["1"]);
    // Drivers for this version, storage and network.
    let paths = value("DriverPaths/PathAndCredentials/Path");
    for driver in ["viostor", "vioscsi", "NetKVM"] {
        assert!(paths.contains(&format!("E:\\{driver}\\w11\\amd64")), "{paths:?}");
    }
    assert!(paths.iter().all(|p| p.contains("\\w11\\amd64")));
    // The bypasses asked for, and BypassNRO.
    let commands = value("RunSynchronous/RunSynchronousCommand/Path").join("\n");
    for v in ["BypassTPMCheck", "BypassSecureBootCheck", "BypassRAMCheck", "BypassCPUCheck", "BypassNRO"] {
        assert!(commands.contains(v), "{v}: {commands}");
    }
    assert!(!commands.contains("BypassStorageCheck"));
    // First logon: guest tools, OpenSSH, the key, the firewall.
    let first = value("FirstLogonCommands/SynchronousCommand/CommandLine").join("\n");
    for step in ["-Step GuestTools", "-Step OpenSsh", "-Step AuthorizeKey", "-Step Firewall"] {
        assert!(first.contains(step), "{first}");
    }
}

#[test]
fn bypasses_only_for_checks_the_machine_cannot_pass() {
    use WindowsVersion::*;
    assert_eq!(answer::lab_bypasses(Win11, &facts(true, true, 8192, false)), []);
    assert_eq!(answer::lab_bypasses(Win11, &facts(false, true, 8192, false)), [LabBypass::Tpm]);
    assert_eq!(answer::lab_bypasses(Win11, &facts(true, true, 4096, true)), [LabBypass::Cpu]);
    assert_eq!(answer::lab_bypasses(Win10, &facts(false, false, 1024, true)), []);
    let mut small = facts(true, true, 8192, false);
    small.disk_bytes = 40 << 30;
    assert_eq!(answer::lab_bypasses(Win11, &small), [LabBypass::Storage]);
    let xml = AnswerFile::new(&source(Win11), "agent", Password::new("pw"), 1, vec![]).render();
    assert!(!xml.contains("LabConfig"), "no RunSynchronous bypasses when none are needed");
}

#[test]
fn values_are_escaped_and_xmllint_accepts_the_file() {
    let mut w = source(WindowsVersion::Win10);
    w.computer_name = "WIN10".into();
    let nasty = "p<a&s\"s'>]]>";
    let xml = AnswerFile::new(&w, "Zoë & <Co>", Password::new(nasty), 2, vec![]).render();
    let found = settings(&xml);
    let values: Vec<&str> =
        found.iter().filter(|(p, ..)| p.ends_with("Password/Value")).map(|t| t.3.as_str()).collect();
    assert_eq!(values, [nasty, nasty]);
    assert!(found.iter().any(|(p, _, _, t)| p == "AutoLogon/Username" && t == "Zoë & <Co>"));
    assert!(!xml.contains("<Co>"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Autounattend.xml");
    std::fs::write(&file, &xml).unwrap();
    let out = Command::new("xmllint").arg("--noout").arg(&file).output().expect("xmllint (libxml2-utils)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(format!("{:?}", Password::new(nasty)).contains("***"));
    assert!(!format!("{:?}", Password::new(nasty)).contains("p<a"));
}

#[test]
fn answer_file_snapshot() {
    let w = source(WindowsVersion::Win11);
    let bypasses = answer::lab_bypasses(w.version, &facts(true, true, 8192, true));
    let xml = AnswerFile::new(&w, "agent", Password::new("snapshot-password"), 6, bypasses).render();
    insta::assert_snapshot!(xml);
}

#[test]
fn answer_media_reads_back_with_mtools_and_passes_fsck() {
    let w = source(WindowsVersion::Win11);
    let answer = AnswerFile::new(&w, "agent", Password::new("pw"), 6, vec![]);
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGkXl0i7vy2QHbTFt3s4sYc2kW3sBdV0Rn7g8Zr4xqz vmkit@test";
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("answer.img");
    answer::answer_media(&answer, key).unwrap().write(&image, 0o600).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&image).unwrap().permissions().mode() & 0o777, 0o600);

    let mtools = |args: &[&str]| {
        let out = Command::new(args[0])
            .args(&args[1..])
            .env("MTOOLS_SKIP_CHECK", "1")
            .output()
            .unwrap_or_else(|e| panic!("{} (mtools): {e}", args[0]));
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let img = image.to_str().unwrap();
    let root = String::from_utf8(mtools(&["mdir", "-i", img, "::/"])).unwrap();
    assert!(root.contains("Autounattend.xml"), "{root}");
    assert!(root.contains("VMKITANSWER"), "{root}");
    assert_eq!(mtools(&["mtype", "-i", img, "::/Autounattend.xml"]), answer.render().into_bytes());
    let keys = mtools(&["mtype", "-i", img, "::/vmkit-authorized-keys"]);
    assert_eq!(keys, format!("{key}\r\n").into_bytes());
    let script = mtools(&["mtype", "-i", img, "::/vmkit-firstlogon.ps1"]);
    assert!(script.starts_with(&[0xEF, 0xBB, 0xBF]), "UTF-8 BOM for PowerShell 5.1");
    assert!(String::from_utf8_lossy(&script).contains("'*S-1-5-32-544:F'"));

    let fsck = Command::new("fsck.fat").args(["-n", "-v"]).arg(&image).output().expect("fsck.fat (dosfstools)");
    assert!(fsck.status.success(), "{}", String::from_utf8_lossy(&fsck.stdout));
}
