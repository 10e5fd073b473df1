//! Talking to an installed Windows over SSH: every command is PowerShell, sent as `-EncodedCommand`.
//!
//! OpenSSH for Windows hands a command to `cmd.exe /c`, whose quoting rules differ from every other shell and
//! cannot express every string. So vmkit never assembles a command line from user text: each script — the
//! recipe's provisioning lines, the build's own queries — is encoded as UTF-16LE, then base64, and sent as
//! `powershell -NoProfile -NonInteractive -EncodedCommand <base64>`. Base64 has no character any shell treats
//! specially, so the line reaches PowerShell byte for byte.
//!
//! The scripts the build and `vmkit image test` send are constants here, so a stand-in guest (the tests' Setup
//! stand-in) can recognise them and answer from its own real state.

use base64::Engine as _;
use serde::Deserialize;

/// The program the encoded commands run.
pub const POWERSHELL: &str = "powershell";

/// Proves that a login reaches PowerShell (the readiness probe once sshd answers).
pub const READY: &str = "exit 0";

/// Trims the system volume, so the compacted image leaves out what Windows freed (the disk has `discard=unmap`).
pub const TRIM: &str = "Optimize-Volume -DriveLetter C -ReTrim";

/// Powers the guest off; the SSH session may drop before it answers.
pub const SHUTDOWN: &str = "Stop-Computer -Force";

/// The first line of every provisioning command: a failing cmdlet ends the command with a non-zero exit code
/// instead of going on to the next statement.
pub const PRELUDE: &str = "$ErrorActionPreference = 'Stop'";

/// Secure Boot and the TPM as one line of JSON (`vmkit image test`): `Confirm-SecureBootUEFI` throws on a
/// machine without UEFI (reported as `null`); `Win32_Tpm` is absent without a TPM, and its `SpecVersion` starts
/// with the TPM's family (`2.0, 0, 1.38`).
pub const SECURITY_QUERY: &str = "$sb = $null; try { $sb = [bool](Confirm-SecureBootUEFI) } catch { $sb = $null }; \
$tpm = Get-CimInstance -Namespace root/cimv2/Security/MicrosoftTpm -ClassName Win32_Tpm -ErrorAction SilentlyContinue; \
$spec = $null; if ($tpm) { $spec = [string]$tpm.SpecVersion }; \
[pscustomobject]@{ secureBoot = $sb; tpmPresent = [bool]$tpm; tpmSpecVersion = $spec } | ConvertTo-Json -Compress";

/// `script` as UTF-16LE, base64: what `-EncodedCommand` takes.
pub fn encode(script: &str) -> String {
    let utf16: Vec<u8> = script.encode_utf16().flat_map(u16::to_le_bytes).collect();
    base64::engine::general_purpose::STANDARD.encode(utf16)
}

/// The command line that runs `script` in PowerShell (no character of `script` appears in it).
pub fn command(script: &str) -> String {
    format!("{POWERSHELL} -NoProfile -NonInteractive -EncodedCommand {}", encode(script))
}

/// A provisioning line with [`PRELUDE`] before it.
pub fn provision_script(line: &str) -> String {
    format!("{PRELUDE}\r\n{line}")
}

/// What [`SECURITY_QUERY`] prints.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityState {
    /// `Confirm-SecureBootUEFI`: `None` when the firmware is not UEFI.
    pub secure_boot: Option<bool>,
    /// Whether `Win32_Tpm` has an instance.
    pub tpm_present: bool,
    /// `Win32_Tpm.SpecVersion` (`2.0, 0, 1.38`).
    pub tpm_spec_version: Option<String>,
}

impl SecurityState {
    /// Parses the query's output (the last non-empty line: a profile may print before it).
    pub fn parse(output: &str) -> Result<Self, String> {
        let line = output.lines().rev().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
        serde_json::from_str(line).map_err(|e| format!("the Secure Boot/TPM query printed {line:?}: {e}"))
    }

    /// Whether this is what the recipe asked for; `Err` names what was found instead.
    pub fn check(&self, secure_boot: bool, tpm: bool) -> Result<String, String> {
        let mut wrong = Vec::new();
        let mut found = Vec::new();
        if secure_boot {
            match self.secure_boot {
                Some(true) => found.push("Secure Boot on".to_owned()),
                Some(false) => wrong.push("Secure Boot is off (Confirm-SecureBootUEFI: False)".to_owned()),
                None => wrong.push("no UEFI Secure Boot (Confirm-SecureBootUEFI is not supported)".to_owned()),
            }
        }
        if tpm {
            let family = self.tpm_spec_version.as_deref().and_then(|s| s.split(',').next()).map(str::trim);
            match (self.tpm_present, family) {
                (true, Some("2.0")) => found.push("TPM 2.0 present".to_owned()),
                (true, other) => wrong.push(format!(
                    "the TPM is not a TPM 2.0 (SpecVersion {:?})",
                    other.map_or("none".to_owned(), str::to_owned)
                )),
                (false, _) => wrong.push("no TPM (Win32_Tpm has no instance)".to_owned()),
            }
        }
        if wrong.is_empty() { Ok(found.join(", ")) } else { Err(wrong.join("; ")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_commands_are_utf16le_base64_and_carry_no_user_text() {
        // The documentation's example line, its encoding computed independently (Python: base64 of UTF-16LE).
        assert_eq!(
            encode("dir \"c:\\program files\" "),
            "ZABpAHIAIAAiAGMAOgBcAHAAcgBvAGcAcgBhAG0AIABmAGkAbABlAHMAIgAgAA=="
        );
        let nasty = "Write-Output 'a\"b' ; & | < > ^ % $env:PATH `n ü";
        let line = command(nasty);
        assert!(line.starts_with("powershell -NoProfile -NonInteractive -EncodedCommand "));
        let b64 = line.rsplit(' ').next().unwrap();
        assert!(b64.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)), "{b64}");
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
        let units: Vec<u16> = bytes.chunks(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        assert_eq!(String::from_utf16(&units).unwrap(), nasty);
    }

    #[test]
    fn security_state_is_parsed_and_checked() {
        let ok = SecurityState::parse(
            "noise\n{\"secureBoot\":true,\"tpmPresent\":true,\"tpmSpecVersion\":\"2.0, 0, 1.38\"}\r\n",
        )
        .unwrap();
        assert_eq!(ok.check(true, true), Ok("Secure Boot on, TPM 2.0 present".to_owned()));
        let off = SecurityState::parse("{\"secureBoot\":false,\"tpmPresent\":false,\"tpmSpecVersion\":null}").unwrap();
        assert_eq!(off.check(false, false), Ok(String::new()));
        let err = off.check(true, true).unwrap_err();
        assert!(err.contains("Secure Boot is off") && err.contains("no TPM"), "{err}");
        let bios =
            SecurityState::parse("{\"secureBoot\":null,\"tpmPresent\":true,\"tpmSpecVersion\":\"1.2, 2, 3\"}").unwrap();
        let err = bios.check(true, true).unwrap_err();
        assert!(err.contains("not supported") && err.contains("\"1.2\""), "{err}");
        assert!(SecurityState::parse("Confirm-SecureBootUEFI : Access was denied").is_err());
    }
}
