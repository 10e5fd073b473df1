//! OpenCore on the boot disk: the files taken from a pinned OpenCore release, and its `config.plist` rendered
//! from a typed model.
//!
//! A release of OpenCorePkg is a zip (`OpenCore-X.Y.Z-RELEASE.zip`) holding, under `X64/EFI/`, the bootstrap
//! (`BOOT/BOOTx64.efi`), OpenCore itself (`OC/OpenCore.efi`) and its drivers (`OC/Drivers/*.efi`), next to docs,
//! utilities and an IA32 build. vmkit takes only what its configuration loads — the bootstrap, OpenCore,
//! `OpenRuntime.efi` (memory-map and NVRAM services macOS's booter needs) and `OpenHfsPlus.efi` (the recovery image
//! is HFS+, which OVMF cannot read) — and refuses a release that lacks one of them, naming it. Only those entries
//! are read from the archive, each bounded in size; nothing in it is unpacked by its own path.
//!
//! `config.plist` is [`Config`], a typed subset of OpenCore's configuration, serialised by the `plist` crate.
//! OpenCore gives every key a plist leaves out its documented default, so the model holds the keys whose
//! defaults do not suit a VM, and those a reader should see:
//!
//! - **SMBIOS** (`PlatformInfo`, `Automatic`): the image's [`MacIdentity`] — model, serial, MLB, system UUID,
//!   ROM — from which OpenCore fills in the rest of the model's SMBIOS tables;
//! - **booter quirks** as OSX-KVM's configuration for OVMF under QEMU sets them (runtime-defrag avoidance, a
//!   custom KASLR slide, safe-mode slide, write-unprotection of the boot services), and no MMIO devirtualisation,
//!   memory-map rebuild or virtual-map setup;
//! - **kernel quirks**: `ProvideCurrentCpuInfo` (the TSC and bus frequencies a VM's CPUID does not report),
//!   `DisableLinkeditJettison`, dummy power management (a VM has no CPU power states) and panics that say why;
//! - **boot arguments** for QEMU (`keepsyms=1 tlbto_us=0 vti=9`, verbose unless the recipe says otherwise),
//!   written to NVRAM with the recovery's language preset to English so the shipped automation scripts find
//!   their texts;
//! - **security** set for an unsigned, self-made configuration (`Vault` Optional, `SecureBootModel` Disabled —
//!   Apple's secure boot needs an image OpenCore can personalise, which a VM installer is not);
//! - **UEFI**: the two drivers, connected, and the APFS driver loaded from the disk (`EnableJumpstart`);
//! - **kexts** only when a recipe asks for them ([`super::kexts`]): the machine profile's devices are ones macOS
//!   drives itself (the SMC is QEMU's `isa-applesmc`, so VirtualSMC is not required); `Kernel.Add` lists the
//!   bundles a recipe's kext releases put on the boot disk, each after the bundles it links against.
//!
//! Whether OpenCore accepts the result is checked by the release's own validator, `ocvalidate`, which only a
//! real release carries (docs/macos.md gives the command).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::smbios::MacIdentity;

/// The files vmkit takes from a release: the path in the release zip, and where it goes on the ESP.
pub const RELEASE_FILES: [(&str, &str); 4] = [
    ("X64/EFI/BOOT/BOOTx64.efi", "EFI/BOOT/BOOTx64.efi"),
    ("X64/EFI/OC/OpenCore.efi", "EFI/OC/OpenCore.efi"),
    ("X64/EFI/OC/Drivers/OpenRuntime.efi", "EFI/OC/Drivers/OpenRuntime.efi"),
    ("X64/EFI/OC/Drivers/OpenHfsPlus.efi", "EFI/OC/Drivers/OpenHfsPlus.efi"),
];
/// Where the configuration goes on the ESP.
pub const CONFIG_PATH: &str = "EFI/OC/config.plist";
/// The largest file taken from a release (OpenCore.efi is well under 1 MiB).
pub const MAX_FILE: u64 = 16 << 20;
/// NVRAM GUID of Apple's boot variables (`boot-args`, `prev-lang:kbd`).
pub const APPLE_BOOT_VARIABLE_GUID: &str = "7C436110-AB2A-4BBB-A880-FE41995C9F82";
/// Boot arguments for macOS under QEMU: symbols in panics, and TLB-shootdown timeouts a VM's vCPUs can meet.
pub const QEMU_BOOT_ARGS: &str = "keepsyms=1 tlbto_us=0 vti=9";

/// What is wrong with an OpenCore release.
#[derive(Debug, thiserror::Error)]
pub enum OpenCoreError {
    /// The file could not be read.
    #[error("reading the OpenCore release {}: {source}", path.display())]
    Io {
        /// The release.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a zip (or a damaged one).
    #[error("{}: not an OpenCore release zip: {reason}", path.display())]
    NotAZip {
        /// The release.
        path: PathBuf,
        /// The reader's complaint.
        reason: String,
    },
    /// A file OpenCore needs is not in it.
    #[error("{}: the OpenCore release has no {entry} (is it OpenCorePkg's X64 RELEASE or DEBUG zip?)", path.display())]
    Missing {
        /// The release.
        path: PathBuf,
        /// The missing entry.
        entry: &'static str,
    },
    /// A file larger than any OpenCore file.
    #[error("{}: {entry} in the OpenCore release is {size} bytes, more than an OpenCore file can be", path.display())]
    TooLarge {
        /// The release.
        path: PathBuf,
        /// The entry.
        entry: &'static str,
        /// Its size.
        size: u64,
    },
}

/// The files taken from an OpenCore release, each with its place on the ESP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCoreFiles {
    /// `(ESP path, bytes)`, in [`RELEASE_FILES`] order.
    pub files: Vec<(&'static str, Vec<u8>)>,
}

impl OpenCoreFiles {
    /// Reads the files vmkit needs from a release zip, or from a directory holding an unpacked release.
    pub fn read(path: &Path) -> Result<Self, OpenCoreError> {
        let io = |source| OpenCoreError::Io { path: path.to_owned(), source };
        let mut files = Vec::new();
        if path.is_dir() {
            for (entry, target) in RELEASE_FILES {
                let file = path.join(entry);
                let size = match std::fs::metadata(&file) {
                    Ok(m) if m.is_file() => m.len(),
                    _ => return Err(OpenCoreError::Missing { path: path.to_owned(), entry }),
                };
                if size > MAX_FILE {
                    return Err(OpenCoreError::TooLarge { path: path.to_owned(), entry, size });
                }
                files.push((target, std::fs::read(&file).map_err(io)?));
            }
            return Ok(Self { files });
        }
        let file = std::fs::File::open(path).map_err(io)?;
        Self::from_zip(std::io::BufReader::new(file), path)
    }

    /// Reads the files vmkit needs from a release zip read from `reader`; `path` names it in errors.
    pub fn from_zip<R: Read + std::io::Seek>(reader: R, path: &Path) -> Result<Self, OpenCoreError> {
        let not_zip =
            |e: zip::result::ZipError| OpenCoreError::NotAZip { path: path.to_owned(), reason: e.to_string() };
        let mut archive = zip::ZipArchive::new(reader).map_err(not_zip)?;
        let mut files = Vec::new();
        for (entry, target) in RELEASE_FILES {
            let mut member = match archive.by_name(entry) {
                Ok(m) => m,
                Err(zip::result::ZipError::FileNotFound) => {
                    return Err(OpenCoreError::Missing { path: path.to_owned(), entry });
                }
                Err(e) => return Err(not_zip(e)),
            };
            if member.size() > MAX_FILE {
                return Err(OpenCoreError::TooLarge { path: path.to_owned(), entry, size: member.size() });
            }
            let mut bytes = Vec::new();
            // Bounded whatever the header claims: a member that inflates past the limit is refused.
            (&mut member)
                .take(MAX_FILE + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| OpenCoreError::NotAZip { path: path.to_owned(), reason: format!("{entry}: {e}") })?;
            if bytes.len() as u64 > MAX_FILE {
                return Err(OpenCoreError::TooLarge { path: path.to_owned(), entry, size: bytes.len() as u64 });
            }
            files.push((target, bytes));
        }
        Ok(Self { files })
    }
}

/// OpenCore's `config.plist`: the sections vmkit sets (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Config {
    /// Booter.
    pub booter: Booter,
    /// Kernel.
    pub kernel: Kernel,
    /// Misc.
    pub misc: Misc,
    /// NVRAM.
    #[serde(rename = "NVRAM")]
    pub nvram: Nvram,
    /// PlatformInfo.
    pub platform_info: PlatformInfo,
    /// UEFI.
    #[serde(rename = "UEFI")]
    pub uefi: Uefi,
}

/// `Booter`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Booter {
    /// `Booter.Quirks`.
    pub quirks: BooterQuirks,
}

/// `Booter.Quirks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BooterQuirks {
    /// Keep runtime services' memory from being defragmented by macOS's booter.
    pub avoid_runtime_defrag: bool,
    /// Do not move MMIO regions into virtual memory.
    pub devirtualise_mmio: bool,
    /// Let safe mode use a slide that fits.
    pub enable_safe_mode_slide: bool,
    /// Lift write protection from boot services while the booter patches them.
    pub enable_write_unprotector: bool,
    /// Choose a KASLR slide that fits the memory map.
    pub provide_custom_slide: bool,
    /// Rebuild the memory map for Apple's booter (not needed on OVMF).
    pub rebuild_apple_memory_map: bool,
    /// Set up virtual memory for firmware that does not (OVMF does).
    pub setup_virtual_map: bool,
    /// Fix runtime memory permissions (with `RebuildAppleMemoryMap`).
    pub sync_runtime_permissions: bool,
}

/// `Kernel`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Kernel {
    /// Kexts to inject.
    pub add: Vec<Kext>,
    /// `Kernel.Emulate`.
    pub emulate: KernelEmulate,
    /// `Kernel.Quirks`.
    pub quirks: KernelQuirks,
}

/// One kext to inject (`Kernel.Add[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Kext {
    /// `Lilu.kext`, relative to `EFI/OC/Kexts`.
    pub bundle_path: String,
    /// Why.
    pub comment: String,
    /// Loaded or not.
    pub enabled: bool,
    /// `Contents/MacOS/Lilu`.
    pub executable_path: String,
    /// `Contents/Info.plist`.
    pub plist_path: String,
    /// `x86_64`.
    pub arch: String,
    /// Lowest kernel version (empty: any).
    pub min_kernel: String,
    /// Highest kernel version (empty: any).
    pub max_kernel: String,
}

/// `Kernel.Emulate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KernelEmulate {
    /// Disable CPU power management (a VM has no P- or C-states to manage).
    pub dummy_power_management: bool,
}

/// `Kernel.Quirks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct KernelQuirks {
    /// Keep `__LINKEDIT` for kexts that need it after boot.
    pub disable_linkedit_jettison: bool,
    /// Shorter panic logs, without the kext dump.
    pub panic_no_kext_dump: bool,
    /// Panic (and say so) instead of hanging on power-state timeouts.
    pub power_timeout_kernel_panic: bool,
    /// Give the kernel the TSC and bus frequencies a VM's CPUID does not report.
    pub provide_current_cpu_info: bool,
}

/// `Misc`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Misc {
    /// `Misc.Boot`.
    pub boot: MiscBoot,
    /// `Misc.Security`.
    pub security: MiscSecurity,
}

/// `Misc.Boot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MiscBoot {
    /// Hide recovery and tool entries unless asked for (vmkit shows them: the installer disk is a recovery image).
    pub hide_auxiliary: bool,
    /// `Builtin`: OpenCore's text picker (no theme files needed).
    pub picker_mode: String,
    /// Show the picker.
    pub show_picker: bool,
    /// Seconds before the default entry boots (0: wait).
    pub timeout: u32,
}

/// `Misc.Security`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MiscSecurity {
    /// Let the picker's Ctrl+Enter set the default entry.
    pub allow_set_default: bool,
    /// Signed DMGs only.
    pub dmg_loading: String,
    /// What OpenCore tells the OS about itself (6: version and boot path).
    pub expose_sensitive_data: u32,
    /// Which log levels halt.
    pub halt_level: u32,
    /// Which devices and file systems the picker scans (0: all).
    pub scan_policy: u32,
    /// Apple Secure Boot model (`Disabled`).
    pub secure_boot_model: String,
    /// Configuration signing (`Optional`: none).
    pub vault: String,
}

/// `NVRAM`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Nvram {
    /// Variables to set, by vendor GUID.
    pub add: BTreeMap<String, BTreeMap<String, NvramValue>>,
    /// Variables to remove before setting them again, by vendor GUID.
    pub delete: BTreeMap<String, Vec<String>>,
    /// Write them to the firmware's variable store.
    pub write_flash: bool,
}

/// An NVRAM value: a string or bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum NvramValue {
    /// A string.
    String(String),
    /// Bytes.
    Data(plist::Data),
}

/// `PlatformInfo`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PlatformInfo {
    /// Fill in the model's SMBIOS from OpenCore's database, given `Generic`.
    pub automatic: bool,
    /// The identity.
    pub generic: Generic,
    /// Update the data hub.
    pub update_data_hub: bool,
    /// Update NVRAM (ROM, MLB).
    #[serde(rename = "UpdateNVRAM")]
    pub update_nvram: bool,
    /// Update SMBIOS.
    #[serde(rename = "UpdateSMBIOS")]
    pub update_smbios: bool,
    /// `Create`: new SMBIOS tables rather than editing OVMF's.
    #[serde(rename = "UpdateSMBIOSMode")]
    pub update_smbios_mode: String,
}

/// `PlatformInfo.Generic`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Generic {
    /// Say "Acidanthera" rather than "Apple" as the SMBIOS vendor where macOS does not care.
    pub spoof_vendor: bool,
    /// The model.
    pub system_product_name: String,
    /// The serial.
    pub system_serial_number: String,
    /// The logic board serial.
    #[serde(rename = "MLB")]
    pub mlb: String,
    /// The system UUID.
    #[serde(rename = "SystemUUID")]
    pub system_uuid: String,
    /// The ROM.
    #[serde(rename = "ROM")]
    pub rom: plist::Data,
}

/// `UEFI`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Uefi {
    /// `UEFI.APFS`.
    #[serde(rename = "APFS")]
    pub apfs: Apfs,
    /// Connect drivers after loading them.
    pub connect_drivers: bool,
    /// Drivers loaded from `EFI/OC/Drivers`.
    pub drivers: Vec<Driver>,
    /// `UEFI.Output`.
    pub output: Output,
    /// `UEFI.Quirks`.
    pub quirks: UefiQuirks,
}

/// `UEFI.APFS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Apfs {
    /// Load the APFS driver embedded in the container.
    pub enable_jumpstart: bool,
    /// Keep the APFS driver's messages off the screen.
    pub hide_verbose: bool,
    /// Oldest driver date accepted (0: OpenCore's default, Big Sur's).
    pub min_date: i64,
    /// Oldest driver version accepted (0: OpenCore's default, Big Sur's).
    pub min_version: i64,
}

/// One driver (`UEFI.Drivers[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Driver {
    /// Arguments.
    pub arguments: String,
    /// Why.
    pub comment: String,
    /// Loaded or not.
    pub enabled: bool,
    /// Load before the others.
    pub load_early: bool,
    /// File name under `EFI/OC/Drivers`.
    pub path: String,
}

/// `UEFI.Output`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Output {
    /// Provide a console on the graphics output.
    pub provide_console_gop: bool,
    /// The screen mode (the automation scripts are written for 1920×1080).
    pub resolution: String,
}

/// `UEFI.Quirks`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UefiQuirks {
    /// Keep macOS's boot-variable writes in OpenCore's namespace, so the installer's "boot this next" works.
    pub request_boot_var_routing: bool,
}

/// What a VM's configuration varies by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSettings {
    /// Verbose boot (`-v`): kernel messages on screen instead of the Apple logo.
    pub verbose: bool,
    /// Boot arguments added after vmkit's.
    pub extra_boot_args: Vec<String>,
    /// Seconds the picker waits before booting the default entry.
    pub picker_timeout: u32,
}

impl Default for VmSettings {
    fn default() -> Self {
        Self { verbose: true, extra_boot_args: Vec::new(), picker_timeout: 10 }
    }
}

impl VmSettings {
    /// The boot arguments written to NVRAM.
    pub fn boot_args(&self) -> String {
        let mut args: Vec<&str> = Vec::new();
        if self.verbose {
            args.push("-v");
        }
        args.extend(QEMU_BOOT_ARGS.split(' '));
        args.extend(self.extra_boot_args.iter().map(String::as_str));
        args.join(" ")
    }
}

impl Config {
    /// The configuration of a VM with `identity`.
    pub fn for_vm(identity: &MacIdentity, settings: &VmSettings) -> Self {
        let mut boot_vars = BTreeMap::new();
        boot_vars.insert("boot-args".to_owned(), NvramValue::String(settings.boot_args()));
        // The recovery's language and keyboard: English (US), so its first screen is the one the scripts expect.
        boot_vars.insert("prev-lang:kbd".to_owned(), NvramValue::Data(plist::Data::new(b"en-US:0".to_vec())));
        let names: Vec<String> = boot_vars.keys().cloned().collect();
        let driver = |path: &str, comment: &str| Driver {
            arguments: String::new(),
            comment: comment.to_owned(),
            enabled: true,
            load_early: false,
            path: path.to_owned(),
        };
        Self {
            booter: Booter {
                quirks: BooterQuirks {
                    avoid_runtime_defrag: true,
                    devirtualise_mmio: false,
                    enable_safe_mode_slide: true,
                    enable_write_unprotector: true,
                    provide_custom_slide: true,
                    rebuild_apple_memory_map: false,
                    setup_virtual_map: false,
                    sync_runtime_permissions: false,
                },
            },
            kernel: Kernel {
                add: Vec::new(),
                emulate: KernelEmulate { dummy_power_management: true },
                quirks: KernelQuirks {
                    disable_linkedit_jettison: true,
                    panic_no_kext_dump: true,
                    power_timeout_kernel_panic: true,
                    provide_current_cpu_info: true,
                },
            },
            misc: Misc {
                boot: MiscBoot {
                    // Shown: OpenCore may count a recovery image (the installer disk) as an auxiliary entry.
                    hide_auxiliary: false,
                    picker_mode: "Builtin".to_owned(),
                    show_picker: true,
                    timeout: settings.picker_timeout,
                },
                security: MiscSecurity {
                    allow_set_default: true,
                    dmg_loading: "Signed".to_owned(),
                    expose_sensitive_data: 6,
                    halt_level: 0x8000_0000,
                    scan_policy: 0,
                    secure_boot_model: "Disabled".to_owned(),
                    vault: "Optional".to_owned(),
                },
            },
            nvram: Nvram {
                add: BTreeMap::from([(APPLE_BOOT_VARIABLE_GUID.to_owned(), boot_vars)]),
                delete: BTreeMap::from([(APPLE_BOOT_VARIABLE_GUID.to_owned(), names)]),
                write_flash: true,
            },
            platform_info: PlatformInfo {
                automatic: true,
                generic: Generic {
                    spoof_vendor: true,
                    system_product_name: identity.model.clone(),
                    system_serial_number: identity.serial.clone(),
                    mlb: identity.mlb.clone(),
                    system_uuid: identity.system_uuid.clone(),
                    rom: plist::Data::new(identity.rom_bytes()),
                },
                update_data_hub: true,
                update_nvram: true,
                update_smbios: true,
                update_smbios_mode: "Create".to_owned(),
            },
            uefi: Uefi {
                apfs: Apfs { enable_jumpstart: true, hide_verbose: true, min_date: 0, min_version: 0 },
                connect_drivers: true,
                drivers: vec![
                    driver("OpenRuntime.efi", "memory map and NVRAM services for macOS's booter"),
                    driver("OpenHfsPlus.efi", "HFS+ (the recovery image's file system)"),
                ],
                output: Output { provide_console_gop: true, resolution: "1920x1080@32".to_owned() },
                quirks: UefiQuirks { request_boot_var_routing: true },
            },
        }
    }

    /// The XML property list OpenCore reads.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Every field is a string, number, bool, data, array or dictionary with string keys: serialising into
        // memory cannot fail.
        plist::to_writer_xml(&mut out, self).unwrap_or_else(|e| unreachable!("config.plist model: {e}"));
        out.push(b'\n');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::macos::smbios::{MODELS, MacIdentity};

    #[test]
    fn macos_config_round_trips_through_the_plist_reader() {
        let id = MacIdentity::generate(&MODELS[0]);
        let settings = VmSettings { verbose: false, extra_boot_args: vec!["debug=0x100".into()], picker_timeout: 5 };
        let bytes = Config::for_vm(&id, &settings).render();
        let value = plist::Value::from_reader_xml(bytes.as_slice()).unwrap();
        let root = value.as_dictionary().unwrap();
        let generic = root["PlatformInfo"].as_dictionary().unwrap()["Generic"].as_dictionary().unwrap();
        assert_eq!(generic["SystemSerialNumber"].as_string(), Some(id.serial.as_str()));
        assert_eq!(generic["ROM"].as_data(), Some(id.rom_bytes().as_slice()));
        let vars = root["NVRAM"].as_dictionary().unwrap()["Add"].as_dictionary().unwrap()[APPLE_BOOT_VARIABLE_GUID]
            .as_dictionary()
            .unwrap();
        assert_eq!(vars["boot-args"].as_string(), Some("keepsyms=1 tlbto_us=0 vti=9 debug=0x100"));
        assert_eq!(
            root["Misc"].as_dictionary().unwrap()["Boot"].as_dictionary().unwrap()["Timeout"].as_unsigned_integer(),
            Some(5)
        );
    }
}
