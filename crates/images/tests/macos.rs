//! macOS recipes, OpenCore's `config.plist` and the OpenCore release reader, checked with independent tools:
//! the rendered plist is read back by libplist's `plistutil` and by Python's `plistlib`, and Python checks the
//! identity's formats with its own code (Apple's base-34 alphabet, the MLB checksum as OpenCore's macserial
//! documents it, an RFC 4122 version-4 UUID). The release is a stand-in zip with OpenCorePkg's directory layout,
//! made by Debian's `zip` (no OpenCore release can be downloaded where vmkit is tested).

use std::path::{Path, PathBuf};
use std::process::Command;

use images::macos::opencore::{Config, OpenCoreError, OpenCoreFiles, RELEASE_FILES, VmSettings};
use images::macos::smbios::{MODELS, MacIdentity};
use images::recipe::{MediaSource, Recipe, Source};

fn run(cmd: &mut Command) -> String {
    testbed::process::run(cmd).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Reads a plist with Python's plistlib and checks the identity's formats in Python; prints JSON.
const PY_CHECK: &str = r#"
import json, plistlib, re, sys
with open(sys.argv[1], 'rb') as f:
    d = plistlib.load(f)
g = d['PlatformInfo']['Generic']
A = '0123456789ABCDEFGHJKLMNPQRSTUVWXYZ'
def mlb_checksum_ok(m):
    total = 0
    for i, c in enumerate(m):
        if c not in A:
            return False
        total += (((i & 1) == (len(m) & 1)) * 2 + 1) * A.index(c)
    return total % 34 == 0
boot = d['NVRAM']['Add']['7C436110-AB2A-4BBB-A880-FE41995C9F82']
print(json.dumps({
    'model': g['SystemProductName'],
    'serial': g['SystemSerialNumber'],
    'mlb': g['MLB'],
    'uuid': g['SystemUUID'],
    'rom': g['ROM'].hex().upper(),
    'serial_ok': re.fullmatch('[0-9A-HJ-NP-Z]{12}', g['SystemSerialNumber']) is not None,
    'mlb_ok': len(g['MLB']) == 17 and mlb_checksum_ok(g['MLB']),
    'uuid_ok': re.fullmatch('[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}', g['SystemUUID']) is not None,
    'rom_unicast': len(g['ROM']) == 6 and g['ROM'][0] & 1 == 0,
    'automatic': d['PlatformInfo']['Automatic'],
    'boot_args': boot['boot-args'],
    'lang': boot['prev-lang:kbd'].decode(),
    'drivers': [x['Path'] for x in d['UEFI']['Drivers'] if x['Enabled']],
    'connect': d['UEFI']['ConnectDrivers'],
    'vault': d['Misc']['Security']['Vault'],
    'secure_boot_model': d['Misc']['Security']['SecureBootModel'],
    'hide_auxiliary': d['Misc']['Boot']['HideAuxiliary'],
    'picker_timeout': d['Misc']['Boot']['Timeout'],
    'cpu_info': d['Kernel']['Quirks']['ProvideCurrentCpuInfo'],
    'kexts': len(d['Kernel']['Add']),
    'booter': sorted(k for k, v in d['Booter']['Quirks'].items() if v is True),
}))
"#;

fn python_view(plist: &Path) -> serde_json::Value {
    serde_json::from_str(&run(Command::new("python3").arg("-c").arg(PY_CHECK).arg(plist))).unwrap()
}

#[test]
fn macos_config_plist_reads_back_with_plistutil_and_plistlib() {
    let dir = tempfile::tempdir().unwrap();
    for model in &MODELS {
        let id = MacIdentity::generate(model);
        let settings = VmSettings { verbose: true, extra_boot_args: vec!["debug=0x100".into()], picker_timeout: 10 };
        let xml = dir.path().join(format!("{}.plist", model.name));
        std::fs::write(&xml, Config::for_vm(&id, &settings).render()).unwrap();

        // libplist parses the XML and writes it as a binary plist; Python reads both and sees the same document.
        let binary = dir.path().join(format!("{}.bin", model.name));
        run(Command::new("plistutil").arg("-i").arg(&xml).arg("-o").arg(&binary));
        assert!(std::fs::read(&binary).unwrap().starts_with(b"bplist00"));
        let view = python_view(&xml);
        assert_eq!(view, python_view(&binary));

        assert_eq!(view["model"], model.name);
        assert_eq!(view["serial"], id.serial.as_str());
        assert_eq!(view["mlb"], id.mlb.as_str());
        assert_eq!(view["uuid"], id.system_uuid.as_str());
        assert_eq!(view["rom"], id.rom.as_str());
        for check in ["serial_ok", "mlb_ok", "uuid_ok", "rom_unicast", "automatic", "connect", "cpu_info"] {
            assert_eq!(view[check], true, "{check}: {view}");
        }
        assert_eq!(view["boot_args"], "-v keepsyms=1 tlbto_us=0 vti=9 debug=0x100");
        assert_eq!(view["lang"], "en-US:0");
        assert_eq!(view["drivers"], serde_json::json!(["OpenRuntime.efi", "OpenHfsPlus.efi"]));
        assert_eq!(view["vault"], "Optional");
        assert_eq!(view["secure_boot_model"], "Disabled");
        assert_eq!(
            (&view["hide_auxiliary"], &view["picker_timeout"]),
            (&serde_json::json!(false), &serde_json::json!(10))
        );
        assert_eq!(view["kexts"], 0);
        assert_eq!(
            view["booter"],
            serde_json::json!([
                "AvoidRuntimeDefrag",
                "EnableSafeModeSlide",
                "EnableWriteUnprotector",
                "ProvideCustomSlide"
            ])
        );
    }
}

/// A stand-in OpenCore release: OpenCorePkg's layout (X64 and IA32 trees, Docs, Utilities), placeholder bytes.
fn stand_in_release(dir: &Path, skip: Option<&str>) -> PathBuf {
    let root = dir.join("release");
    let mut files: Vec<String> = RELEASE_FILES.iter().map(|(entry, _)| (*entry).to_owned()).collect();
    files.extend(
        [
            "X64/EFI/OC/Drivers/ResetNvramEntry.efi",
            "X64/EFI/OC/Tools/OpenShell.efi",
            "IA32/EFI/BOOT/BOOTIa32.efi",
            "IA32/EFI/OC/OpenCore.efi",
            "Docs/Sample.plist",
            "Utilities/ocvalidate/ocvalidate.linux",
        ]
        .map(str::to_owned),
    );
    for file in files.iter().filter(|f| Some(f.as_str()) != skip) {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, format!("stand-in {file}\n")).unwrap();
    }
    for empty in ["X64/EFI/OC/ACPI", "X64/EFI/OC/Kexts", "X64/EFI/OC/Resources/Image"] {
        std::fs::create_dir_all(root.join(empty)).unwrap();
    }
    let zip = dir.join(format!("OpenCore-stand-in{}.zip", if skip.is_some() { "-incomplete" } else { "" }));
    run(Command::new("zip").arg("-q").arg("-r").arg(&zip).arg(".").current_dir(&root));
    std::fs::remove_dir_all(&root).unwrap();
    zip
}

#[test]
fn macos_opencore_release_files_are_taken_from_the_zip_and_a_missing_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let zip = stand_in_release(dir.path(), None);
    let files = OpenCoreFiles::read(&zip).unwrap();
    let targets: Vec<&str> = files.files.iter().map(|(t, _)| *t).collect();
    assert_eq!(
        targets,
        [
            "EFI/BOOT/BOOTx64.efi",
            "EFI/OC/OpenCore.efi",
            "EFI/OC/Drivers/OpenRuntime.efi",
            "EFI/OC/Drivers/OpenHfsPlus.efi"
        ]
    );
    assert_eq!(files.files[1].1, b"stand-in X64/EFI/OC/OpenCore.efi\n");

    let incomplete = stand_in_release(dir.path(), Some("X64/EFI/OC/Drivers/OpenHfsPlus.efi"));
    match OpenCoreFiles::read(&incomplete) {
        Err(OpenCoreError::Missing { entry, .. }) => assert_eq!(entry, "X64/EFI/OC/Drivers/OpenHfsPlus.efi"),
        other => panic!("{other:?}"),
    }
    let not_zip = dir.path().join("not.zip");
    std::fs::write(&not_zip, b"<!DOCTYPE html><html>rate limited</html>").unwrap();
    assert!(matches!(OpenCoreFiles::read(&not_zip), Err(OpenCoreError::NotAZip { .. })));
}

fn parse(text: &str) -> Result<Recipe, images::recipe::RecipeError> {
    Recipe::parse(text, Path::new("dir/mac.toml"))
}

const BASE: &str =
    "name = \"mac\"\nusername = \"agent\"\n[source.macos]\nversion = \"sonoma\"\nopencore = \"OpenCore.zip\"\n";

#[test]
fn macos_recipes_get_defaults_and_errors_point_at_the_culprit() {
    let r = parse(BASE).unwrap();
    let Source::Macos(m) = &r.source else { panic!("{:?}", r.source) };
    assert_eq!(m.model, "iMacPro1,1");
    assert_eq!(m.opencore, MediaSource::Path("dir/OpenCore.zip".into()));
    assert!(m.verbose_boot && m.recovery.is_none());
    assert_eq!((r.memory, r.disk_bytes), (4096, 96 << 30));
    let tahoe = parse(&BASE.replace("sonoma", "26")).unwrap();
    let Source::Macos(t) = &tahoe.source else { unreachable!() };
    assert_eq!((t.model.as_str(), tahoe.memory), ("MacPro7,1", 8192));

    let cases = [
        (BASE.replace("sonoma", "monterey"), 4, 11, "version"),
        (format!("{BASE}model = \"MacBookPro16,1\"\n"), 6, 9, "model"),
        (format!("{}model = \"iMacPro1,1\"\n", BASE.replace("sonoma", "tahoe")), 6, 9, "Tahoe does not support"),
        (format!("{BASE}bootArgs = [\"-v\", \"a b\"]\n"), 6, 19, "bootArgs"),
        (format!("{BASE}opencore2 = 1\n"), 6, 1, "unknown key `source.macos.opencore2`; did you mean `opencore`?"),
        (BASE.replace("\"OpenCore.zip\"", "{ url = \"https://example.org/oc.zip\" }"), 5, 12, "needs both"),
        (format!("{BASE}[provision]\npackages = [\"htop\"]\n"), 7, 13, "not available for a macOS source"),
    ];
    for (text, line, column, needle) in cases {
        let err = parse(&text).unwrap_err();
        let first = err.first().unwrap_or_else(|| panic!("{err}"));
        assert!(first.to_string().contains(needle), "{err}");
        assert_eq!((first.line, first.col), (line, column), "{err}");
    }
}

#[test]
fn macos_example_recipe_pins_a_versioned_opencore_release() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/macos-sonoma.toml");
    let recipe = Recipe::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let Source::Macos(m) = &recipe.source else { panic!("not a macOS recipe") };
    let MediaSource::Download { url, sha256 } = &m.opencore else { panic!("{:?}", m.opencore) };
    // A versioned release asset, never a "latest" link whose contents change.
    assert!(
        url.starts_with("https://github.com/acidanthera/OpenCorePkg/releases/download/1.0.7/")
            && url.ends_with("/OpenCore-1.0.7-RELEASE.zip"),
        "{url}"
    );
    assert_eq!(sha256.len(), 64);
    assert!(recipe.memory >= images::macos::machine::min_memory_mib(m.version));
}

#[test]
fn macos_recorded_identity_is_kept_checked_or_absent() {
    use images::macos::prepare::recorded_identity;
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("prepared.json");
    assert!(recorded_identity(dir.path()).unwrap().is_none(), "no prepared.json");
    std::fs::write(&record, r#"{"name": "win11", "edition": "Pro"}"#).unwrap();
    assert!(recorded_identity(dir.path()).unwrap().is_none(), "a Windows prepare has none");
    let id = MacIdentity::generate(&MODELS[1]);
    std::fs::write(&record, serde_json::json!({ "name": "mac", "identity": id }).to_string()).unwrap();
    assert!(recorded_identity(dir.path()).unwrap() == Some(id.clone()));
    let mut damaged = id;
    damaged.mlb.replace_range(16..17, if damaged.mlb.ends_with('0') { "1" } else { "0" });
    std::fs::write(&record, serde_json::json!({ "identity": damaged }).to_string()).unwrap();
    let err = recorded_identity(dir.path()).unwrap_err();
    assert!(matches!(err, images::build::BuildError::Identity(_)) && err.to_string().contains("mlb"), "{err}");
}
