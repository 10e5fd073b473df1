//! The install scripts vmkit ships, one per macOS version (`examples/macos/<version>.yaml`, compiled in), and the
//! variables the build gives them.
//!
//! Each script erases the system disk in Disk Utility, runs the installer, completes Setup Assistant with a local
//! account, and then, in Terminal, installs the build's public key for that account, lets it use `sudo` without
//! a password (the build's provisioning and shutdown run over SSH with no terminal to type one into) and turns
//! Remote Login on. The build waits for SSH with the generated key after that. The account's name, its password
//! (a secret variable: never shown in logs, reports or debug output) and the public key are script variables
//! ([`automate::vars`]), so no script holds a password.

use std::collections::BTreeMap;
use std::path::PathBuf;

use fetch::macos::MacosVersion;

/// The variable holding the account's short name.
pub const USERNAME: &str = "username";
/// The variable holding the account's password (secret).
pub const PASSWORD: &str = "password";
/// The variable holding the OpenSSH public key the build logs in with.
pub const SSH_PUBLIC_KEY: &str = "ssh_public_key";

/// The shipped script of `version`: its name (as in the repository) and text.
pub fn shipped(version: MacosVersion) -> (&'static str, &'static str) {
    match version {
        MacosVersion::Ventura => {
            ("examples/macos/ventura.yaml", include_str!("../../../../examples/macos/ventura.yaml"))
        }
        MacosVersion::Sonoma => ("examples/macos/sonoma.yaml", include_str!("../../../../examples/macos/sonoma.yaml")),
        MacosVersion::Sequoia => {
            ("examples/macos/sequoia.yaml", include_str!("../../../../examples/macos/sequoia.yaml"))
        }
        MacosVersion::Tahoe => ("examples/macos/tahoe.yaml", include_str!("../../../../examples/macos/tahoe.yaml")),
    }
}

/// Loads the recipe's script, or the shipped one for `version`; every problem as `FILE:LINE:COL`.
pub fn load(custom: Option<&PathBuf>, version: MacosVersion) -> Result<automate::script::Script, Vec<String>> {
    match custom {
        Some(path) => automate::load::load_file(path).map_err(|e| e.diagnostics()),
        None => {
            let (name, text) = shipped(version);
            automate::load::load_str(text, std::path::Path::new(name)).map_err(|e| e.diagnostics())
        }
    }
}

/// The values the build gives a script: those of the three variables above that it declares.
pub fn values(
    script: &automate::script::Script,
    user: &str,
    password: &str,
    public_key: &str,
) -> BTreeMap<String, String> {
    [(USERNAME, user), (PASSWORD, password), (SSH_PUBLIC_KEY, public_key)]
        .into_iter()
        .filter(|(name, _)| script.variables.iter().any(|v| v.name == *name))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_script_loads_and_declares_the_builds_variables() {
        for version in MacosVersion::ALL {
            let script = load(None, version).unwrap_or_else(|e| panic!("{version}: {}", e.join("\n")));
            for (name, secret) in [(USERNAME, false), (PASSWORD, true), (SSH_PUBLIC_KEY, false)] {
                let v = script.variables.iter().find(|v| v.name == name).unwrap_or_else(|| panic!("{version}: {name}"));
                assert_eq!(v.secret, secret, "{version}: {name}");
            }
            let bound = script.bind(&values(&script, "agent", "s3cret-pw", "ssh-ed25519 AAAA vmkit@x")).unwrap();
            let typed: Vec<&automate::script::TypeText> = bound
                .steps
                .iter()
                .filter_map(|s| match &s.action {
                    automate::script::Action::Type(t) => Some(t),
                    _ => None,
                })
                .collect();
            assert!(typed.iter().any(|t| t.text.contains("ssh-ed25519 AAAA vmkit@x")), "{version}: the key is typed");
            for t in &typed {
                assert!(!t.text.contains("${"), "{version}: unbound {}", t.text);
                if t.text.contains("s3cret-pw") {
                    assert!(t.secret, "{version}: a step typing the password is not secret");
                }
            }
        }
    }
}
