//! The answer file (`Autounattend.xml`) from a typed model, written with quick-xml.
//!
//! Each setting sits in the configuration pass and component where Microsoft's unattend reference documents it
//! (the tests hold that table against the XML). The choices that make an install go through with no one at the
//! keyboard:
//!
//! * **windowsPE** — the disk is wiped and laid out for UEFI (EFI 100 MB FAT32, MSR 16 MB, Windows NTFS on the
//!   rest); the EULA is accepted; the image is chosen by `/IMAGE/INDEX` (the index the media reader found for the
//!   recipe's edition), so Setup never shows the edition picker and no product key — least of all an empty one —
//!   is written; the VirtIO storage and network drivers for this Windows version are given under
//!   `Microsoft-Windows-PnpCustomizationsWinPE` (`DriverPaths`), where Setup loads them before it looks for disks.
//!   Windows Setup's `LabConfig` bypasses are set only for the checks this machine cannot pass (no TPM, no Secure
//!   Boot, too little memory or disk, an emulated CPU).
//! * **specialize** — computer name and time zone; `BypassNRO` so OOBE does not insist on a network connection.
//! * **oobeSystem** — every OOBE page hidden, one local administrator with the password from the recipe's
//!   password file, one automatic logon, and first-logon commands that run vmkit's first-logon script from the
//!   answer media: VirtIO guest tools, OpenSSH Server, the generated public key in `administrators_authorized_keys`
//!   (ACL: Administrators and SYSTEM only), the firewall opened for port 22, sshd started.
//!
//! Drive letters of CD-ROMs in Windows PE depend on device enumeration and cannot be known before boot, so each
//! driver directory is listed on every letter the VirtIO media can get; Setup skips paths that do not exist.
//!
//! Every value is escaped by the writer: a password or name with `<`, `&` or `"` lands as text, never as markup.

use std::fmt;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::windows::WindowsVersion;

/// The drivers Setup needs from the VirtIO media: the disk (virtio-blk, virtio-scsi) and the network.
pub const SETUP_DRIVERS: [&str; 3] = ["viostor", "vioscsi", "NetKVM"];

/// Letters Windows PE may give the VirtIO media (after the answer media and the install DVD).
pub const VIRTIO_LETTERS: [char; 6] = ['C', 'D', 'E', 'F', 'G', 'H'];

/// vmkit's first-logon script on the answer media (in its root, beside `Autounattend.xml`).
pub const FIRSTLOGON_SCRIPT: &str = "vmkit-firstlogon.ps1";
/// The public key file on the answer media, copied to `C:\ProgramData\ssh\administrators_authorized_keys`.
pub const AUTHORIZED_KEYS: &str = "vmkit-authorized-keys";
/// The first-logon script itself (static: it reads the key from the file beside it).
pub const FIRSTLOGON_PS1: &str = include_str!("firstlogon.ps1");

/// A password that is never printed (`Debug` shows `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// Reads a password file: the first line, without its line ending. Empty or missing is an error.
    pub fn read(path: &std::path::Path) -> Result<Self, AnswerError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AnswerError::PasswordFile { path: path.to_owned(), reason: e.to_string() })?;
        let line = text.lines().next().unwrap_or("");
        if line.is_empty() {
            return Err(AnswerError::PasswordFile {
                path: path.to_owned(),
                reason: "the first line is empty (the password goes on it)".into(),
            });
        }
        if line.chars().count() > 127 || line.chars().any(char::is_control) {
            return Err(AnswerError::PasswordFile {
                path: path.to_owned(),
                reason: "the password must be at most 127 characters without control characters".into(),
            });
        }
        Ok(Self(line.to_owned()))
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Why an answer file could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    /// The password file is unusable (the password itself is never in the message).
    #[error("password file {}: {reason}", path.display())]
    PasswordFile {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// A Windows Setup hardware check bypassed through `HKLM\SYSTEM\Setup\LabConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LabBypass {
    /// No TPM 2.0.
    Tpm,
    /// No Secure Boot.
    SecureBoot,
    /// Less than 4 GB of memory.
    Ram,
    /// Less than 64 GB of disk.
    Storage,
    /// An emulated CPU (TCG) that is not on Windows 11's list.
    Cpu,
}

impl LabBypass {
    /// The registry value's name.
    pub fn value_name(self) -> &'static str {
        match self {
            Self::Tpm => "BypassTPMCheck",
            Self::SecureBoot => "BypassSecureBootCheck",
            Self::Ram => "BypassRAMCheck",
            Self::Storage => "BypassStorageCheck",
            Self::Cpu => "BypassCPUCheck",
        }
    }
}

/// The machine facts Windows 11's Setup checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MachineFacts {
    /// A TPM 2.0 is attached.
    pub tpm: bool,
    /// Secure Boot firmware.
    pub secure_boot: bool,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Disk size in bytes.
    pub disk_bytes: u64,
    /// The CPU is emulated (TCG).
    pub emulated_cpu: bool,
}

/// The bypasses this machine needs: none for Windows 10 (whose Setup checks none of these), and for Windows 11
/// exactly the checks the machine would fail.
pub fn lab_bypasses(version: WindowsVersion, m: &MachineFacts) -> Vec<LabBypass> {
    if version != WindowsVersion::Win11 {
        return Vec::new();
    }
    let mut out = Vec::new();
    if !m.tpm {
        out.push(LabBypass::Tpm);
    }
    if !m.secure_boot {
        out.push(LabBypass::SecureBoot);
    }
    if m.memory_mib < 4096 {
        out.push(LabBypass::Ram);
    }
    if m.disk_bytes < 64 << 30 {
        out.push(LabBypass::Storage);
    }
    if m.emulated_cpu {
        out.push(LabBypass::Cpu);
    }
    out
}

/// A command Setup runs without a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupCommand {
    /// The command line.
    pub command: String,
    /// What it does (shown in Setup's logs).
    pub description: String,
}

/// The answer file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerFile {
    /// Windows 10 or 11 (the driver directories).
    pub version: WindowsVersion,
    /// UI, system and user locale.
    pub locale: String,
    /// Input locale.
    pub keyboard: String,
    /// Full Windows paths of driver directories for Windows PE.
    pub driver_paths: Vec<String>,
    /// 1-based index of the image in `install.wim`/`install.esd`.
    pub image_index: u32,
    /// Hardware checks to bypass.
    pub bypasses: Vec<LabBypass>,
    /// Computer name.
    pub computer_name: String,
    /// Time zone id.
    pub time_zone: String,
    /// The local administrator.
    pub user: String,
    /// Their password.
    pub password: Password,
    /// Commands run at the automatic first logon, in order.
    pub first_logon: Vec<SetupCommand>,
}

/// The steps of vmkit's first-logon script, in the order they run.
pub const FIRSTLOGON_STEPS: [(&str, &str); 4] = [
    ("GuestTools", "Install the VirtIO guest tools"),
    ("OpenSsh", "Install OpenSSH Server and start it"),
    ("AuthorizeKey", "Authorise vmkit's ed25519 key for administrators"),
    ("Firewall", "Open the firewall for SSH (TCP 22)"),
];

/// The command line that runs one step of the first-logon script, found on whichever drive holds the answer
/// media (its letter is not known before boot).
pub fn firstlogon_command(step: &str) -> String {
    format!(
        "powershell.exe -NoProfile -ExecutionPolicy Bypass -Command \"$s = Get-PSDrive -PSProvider FileSystem | \
         ForEach-Object {{ Join-Path $_.Root '{FIRSTLOGON_SCRIPT}' }} | Where-Object {{ Test-Path $_ }} | \
         Select-Object -First 1; & $s -Step {step}\""
    )
}

/// Every path Windows PE may see `driver` at on the VirtIO media.
pub fn driver_paths(version: WindowsVersion) -> Vec<String> {
    let dirs: Vec<String> = SETUP_DRIVERS.iter().map(|d| virtio_driver_dir(d, version)).collect();
    driver_paths_for(&dirs)
}

/// Every path Windows PE may see these driver folders (relative to the media's root, `/`-separated) at.
pub fn driver_paths_for(dirs: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for dir in dirs {
        for letter in VIRTIO_LETTERS {
            out.push(format!("{letter}:\\{}", dir.replace('/', "\\")));
        }
    }
    out
}

/// A driver's directory on the VirtIO media, relative to its root (`viostor/w11/amd64`).
pub fn virtio_driver_dir(driver: &str, version: WindowsVersion) -> String {
    format!("{driver}/{}/amd64", version.virtio_dir())
}

impl AnswerFile {
    /// The answer file for an install: `first_logon` runs every step of the first-logon script (the guest tools
    /// step only when `guest_tools`).
    pub fn new(
        source: &crate::windows::WindowsSource,
        user: &str,
        password: Password,
        image_index: u32,
        bypasses: Vec<LabBypass>,
    ) -> Self {
        let first_logon = FIRSTLOGON_STEPS
            .iter()
            .filter(|(step, _)| source.guest_tools || *step != "GuestTools")
            .map(|(step, description)| SetupCommand {
                command: firstlogon_command(step),
                description: (*description).to_owned(),
            })
            .collect();
        Self {
            version: source.version,
            locale: source.locale.clone(),
            keyboard: source.keyboard.clone(),
            driver_paths: driver_paths(source.version),
            image_index,
            bypasses,
            computer_name: source.computer_name.clone(),
            time_zone: source.time_zone.clone(),
            user: user.to_owned(),
            password,
            first_logon,
        }
    }

    /// The XML (UTF-8, indented).
    pub fn render(&self) -> String {
        let mut x = Xml::new();
        x.decl();
        x.open("unattend", &[("xmlns", "urn:schemas-microsoft-com:unattend")]);

        // windowsPE
        x.open("settings", &[("pass", "windowsPE")]);
        x.component("Microsoft-Windows-International-Core-WinPE");
        x.open("SetupUILanguage", &[]);
        x.leaf("UILanguage", &self.locale);
        x.close("SetupUILanguage");
        x.leaf("InputLocale", &self.keyboard);
        x.leaf("SystemLocale", &self.locale);
        x.leaf("UILanguage", &self.locale);
        x.leaf("UserLocale", &self.locale);
        x.close("component");

        x.component("Microsoft-Windows-PnpCustomizationsWinPE");
        x.open("DriverPaths", &[]);
        for (i, path) in self.driver_paths.iter().enumerate() {
            let key = (i + 1).to_string();
            x.open("PathAndCredentials", &[("wcm:action", "add"), ("wcm:keyValue", &key)]);
            x.leaf("Path", path);
            x.close("PathAndCredentials");
        }
        x.close("DriverPaths");
        x.close("component");

        x.component("Microsoft-Windows-Setup");
        x.open("DiskConfiguration", &[]);
        x.open("Disk", &[("wcm:action", "add")]);
        x.leaf("DiskID", "0");
        x.leaf("WillWipeDisk", "true");
        x.open("CreatePartitions", &[]);
        for (order, kind, size) in [(1, "EFI", Some(100)), (2, "MSR", Some(16)), (3, "Primary", None)] {
            x.open("CreatePartition", &[("wcm:action", "add")]);
            x.leaf("Order", &order.to_string());
            x.leaf("Type", kind);
            match size {
                Some(mb) => x.leaf("Size", &mb.to_string()),
                None => x.leaf("Extend", "true"),
            }
            x.close("CreatePartition");
        }
        x.close("CreatePartitions");
        x.open("ModifyPartitions", &[]);
        for (order, id, format, label, letter) in
            [(1, 1, "FAT32", "System", None), (2, 3, "NTFS", "Windows", Some("C"))]
        {
            x.open("ModifyPartition", &[("wcm:action", "add")]);
            x.leaf("Order", &order.to_string());
            x.leaf("PartitionID", &id.to_string());
            x.leaf("Format", format);
            x.leaf("Label", label);
            if let Some(letter) = letter {
                x.leaf("Letter", letter);
            }
            x.close("ModifyPartition");
        }
        x.close("ModifyPartitions");
        x.close("Disk");
        x.close("DiskConfiguration");
        x.open("ImageInstall", &[]);
        x.open("OSImage", &[]);
        x.open("InstallFrom", &[]);
        x.open("MetaData", &[("wcm:action", "add")]);
        x.leaf("Key", "/IMAGE/INDEX");
        x.leaf("Value", &self.image_index.to_string());
        x.close("MetaData");
        x.close("InstallFrom");
        x.open("InstallTo", &[]);
        x.leaf("DiskID", "0");
        x.leaf("PartitionID", "3");
        x.close("InstallTo");
        x.close("OSImage");
        x.close("ImageInstall");
        x.open("UserData", &[]);
        x.leaf("AcceptEula", "true");
        x.leaf("FullName", &self.user);
        x.leaf("Organization", "vmkit");
        x.close("UserData");
        if !self.bypasses.is_empty() {
            x.open("RunSynchronous", &[]);
            for (i, bypass) in self.bypasses.iter().enumerate() {
                x.open("RunSynchronousCommand", &[("wcm:action", "add")]);
                x.leaf("Order", &(i + 1).to_string());
                x.leaf(
                    "Path",
                    &format!(
                        "reg.exe add HKLM\\SYSTEM\\Setup\\LabConfig /v {} /t REG_DWORD /d 1 /f",
                        bypass.value_name()
                    ),
                );
                x.leaf("Description", &format!("Windows Setup: {}", bypass.value_name()));
                x.close("RunSynchronousCommand");
            }
            x.close("RunSynchronous");
        }
        x.close("component");
        x.close("settings");

        // specialize
        x.open("settings", &[("pass", "specialize")]);
        x.component("Microsoft-Windows-Shell-Setup");
        x.leaf("ComputerName", &self.computer_name);
        x.leaf("TimeZone", &self.time_zone);
        x.close("component");
        x.component("Microsoft-Windows-Deployment");
        x.open("RunSynchronous", &[]);
        x.open("RunSynchronousCommand", &[("wcm:action", "add")]);
        x.leaf("Order", "1");
        x.leaf(
            "Path",
            "reg.exe add HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\OOBE /v BypassNRO /t REG_DWORD /d 1 /f",
        );
        x.leaf("Description", "OOBE without a network requirement (BypassNRO)");
        x.close("RunSynchronousCommand");
        x.close("RunSynchronous");
        x.close("component");
        x.close("settings");

        // oobeSystem
        x.open("settings", &[("pass", "oobeSystem")]);
        x.component("Microsoft-Windows-International-Core");
        x.leaf("InputLocale", &self.keyboard);
        x.leaf("SystemLocale", &self.locale);
        x.leaf("UILanguage", &self.locale);
        x.leaf("UserLocale", &self.locale);
        x.close("component");
        x.component("Microsoft-Windows-Shell-Setup");
        x.open("OOBE", &[]);
        for flag in [
            "HideEULAPage",
            "HideLocalAccountScreen",
            "HideOEMRegistrationScreen",
            "HideOnlineAccountScreens",
            "HideWirelessSetupInOOBE",
        ] {
            x.leaf(flag, "true");
        }
        x.leaf("ProtectYourPC", "3");
        x.close("OOBE");
        x.open("UserAccounts", &[]);
        x.open("LocalAccounts", &[]);
        x.open("LocalAccount", &[("wcm:action", "add")]);
        x.leaf("Name", &self.user);
        x.leaf("DisplayName", &self.user);
        x.leaf("Group", "Administrators");
        x.open("Password", &[]);
        x.leaf("Value", self.password.expose());
        x.leaf("PlainText", "true");
        x.close("Password");
        x.close("LocalAccount");
        x.close("LocalAccounts");
        x.close("UserAccounts");
        x.open("AutoLogon", &[]);
        x.leaf("Enabled", "true");
        x.leaf("LogonCount", "1");
        x.leaf("Username", &self.user);
        x.open("Password", &[]);
        x.leaf("Value", self.password.expose());
        x.leaf("PlainText", "true");
        x.close("Password");
        x.close("AutoLogon");
        x.open("FirstLogonCommands", &[]);
        for (i, cmd) in self.first_logon.iter().enumerate() {
            x.open("SynchronousCommand", &[("wcm:action", "add")]);
            x.leaf("Order", &(i + 1).to_string());
            x.leaf("CommandLine", &cmd.command);
            x.leaf("Description", &cmd.description);
            x.leaf("RequiresUserInput", "false");
            x.close("SynchronousCommand");
        }
        x.close("FirstLogonCommands");
        x.close("component");
        x.close("settings");

        x.close("unattend");
        x.finish()
    }
}

/// quick-xml's writer with the few shapes an answer file has. Writing into a `Vec` cannot fail, so errors are
/// ignored here once rather than at every call.
struct Xml {
    w: Writer<Vec<u8>>,
}

impl Xml {
    fn new() -> Self {
        Self { w: Writer::new_with_indent(Vec::new(), b' ', 2) }
    }

    fn decl(&mut self) {
        let _ = self.w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)));
    }

    fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        let mut start = BytesStart::new(name);
        for (k, v) in attrs {
            start.push_attribute((*k, *v));
        }
        let _ = self.w.write_event(Event::Start(start));
    }

    /// A `<component>` of this architecture with the namespaces its settings use.
    fn component(&mut self, name: &str) {
        self.open(
            "component",
            &[
                ("name", name),
                ("processorArchitecture", "amd64"),
                ("publicKeyToken", "31bf3856ad364e35"),
                ("language", "neutral"),
                ("versionScope", "nonSxS"),
                ("xmlns:wcm", "http://schemas.microsoft.com/WMIConfig/2002/State"),
                ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
            ],
        );
    }

    fn leaf(&mut self, name: &str, text: &str) {
        let _ = self.w.write_event(Event::Start(BytesStart::new(name)));
        let _ = self.w.write_event(Event::Text(BytesText::new(text)));
        let _ = self.w.write_event(Event::End(BytesEnd::new(name)));
    }

    fn close(&mut self, name: &str) {
        let _ = self.w.write_event(Event::End(BytesEnd::new(name)));
    }

    fn finish(self) -> String {
        let mut s = String::from_utf8(self.w.into_inner()).unwrap_or_default();
        s.push('\n');
        s
    }
}

/// The answer media's volume label.
pub const ANSWER_LABEL: &str = "VMKITANSWER";
/// The answer file's name at the root of the answer media (the name Setup searches removable drives for).
pub const ANSWER_FILE: &str = "Autounattend.xml";

/// The answer media: `Autounattend.xml` at the root, and beside it the first-logon script and the public key it
/// authorises.
pub fn answer_media(answer: &AnswerFile, public_key: &str) -> Result<crate::fat::FatImage, crate::fat::FatError> {
    let mut image = crate::fat::FatImage::new(ANSWER_LABEL)?;
    image.add_file(ANSWER_FILE, answer.render())?;
    // Windows' PowerShell 5.1 reads a BOM-less script as the ANSI code page; the BOM makes it UTF-8.
    let mut script = vec![0xEF, 0xBB, 0xBF];
    script.extend_from_slice(FIRSTLOGON_PS1.replace('\n', "\r\n").as_bytes());
    image.add_file(FIRSTLOGON_SCRIPT, script)?;
    image.add_file(AUTHORIZED_KEYS, format!("{}\r\n", public_key.trim()))?;
    Ok(image)
}
