//! Where distributions put OVMF and virtiofsd, so configs need not spell the paths out.
//!
//! The generated XML names firmware and virtiofsd by path (libvirt's firmware auto-selection hides which file
//! is used and cannot be checked before define). Defaults are found by looking at the usual places, Debian's
//! first; the config can override each path. Discovery takes a root directory so tests can run it against a
//! fake tree.

use std::path::{Path, PathBuf};

use crate::model::FirmwarePaths;

/// Candidate (secure code, Microsoft-keys vars, plain code, plain vars) sets, in order of preference.
const OVMF_SETS: [[&str; 4]; 4] = [
    // Debian, Ubuntu (4 MiB flash, the current build)
    [
        "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.ms.fd",
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
    ],
    // Fedora, RHEL
    [
        "/usr/share/edk2/ovmf/OVMF_CODE.secboot.fd",
        "/usr/share/edk2/ovmf/OVMF_VARS.secboot.fd",
        "/usr/share/edk2/ovmf/OVMF_CODE.fd",
        "/usr/share/edk2/ovmf/OVMF_VARS.fd",
    ],
    // Arch
    [
        "/usr/share/edk2/x64/OVMF_CODE.secboot.4m.fd",
        "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
        "/usr/share/edk2/x64/OVMF_CODE.4m.fd",
        "/usr/share/edk2/x64/OVMF_VARS.4m.fd",
    ],
    // NixOS (libvirtd module with OVMFFull)
    [
        "/run/libvirt/nix-ovmf/OVMF_CODE.ms.fd",
        "/run/libvirt/nix-ovmf/OVMF_VARS.ms.fd",
        "/run/libvirt/nix-ovmf/OVMF_CODE.fd",
        "/run/libvirt/nix-ovmf/OVMF_VARS.fd",
    ],
];

/// virtiofsd locations: the Rust virtiofsd package, then QEMU's own (Debian 12 ships it with QEMU 7.2).
const VIRTIOFSD: [&str; 4] =
    ["/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd", "/usr/lib/virtiofsd", "/usr/bin/virtiofsd"];

fn under(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

impl FirmwarePaths {
    /// Debian's paths (the `ovmf` package).
    pub fn debian() -> Self {
        let [sc, sv, c, v] = OVMF_SETS[0];
        FirmwarePaths { secure_code: sc.into(), secure_vars: sv.into(), code: c.into(), vars: v.into() }
    }

    /// The first set whose secure code file exists under `root` ("/" for the running host); Debian's paths when
    /// none does (the host check then reports them missing).
    pub fn discover(root: &Path) -> Self {
        OVMF_SETS.iter().find(|[sc, ..]| under(root, sc).is_file()).map_or_else(Self::debian, |[sc, sv, c, v]| {
            FirmwarePaths { secure_code: (*sc).into(), secure_vars: (*sv).into(), code: (*c).into(), vars: (*v).into() }
        })
    }
}

/// The virtiofsd binary under `root`: a known location, else `virtiofsd` on `PATH`, else Debian 12's path.
pub fn virtiofsd(root: &Path) -> PathBuf {
    if let Some(p) = VIRTIOFSD.iter().find(|p| under(root, p).is_file()) {
        return PathBuf::from(p);
    }
    if root == Path::new("/")
        && let Some(p) = which("virtiofsd")
    {
        return p;
    }
    PathBuf::from(VIRTIOFSD[1])
}

/// The first executable called `name` on `PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_prefers_the_first_existing_set() -> std::io::Result<()> {
        let root = tempfile::tempdir()?;
        assert_eq!(FirmwarePaths::discover(root.path()), FirmwarePaths::debian());
        let fedora = under(root.path(), OVMF_SETS[1][0]);
        std::fs::create_dir_all(fedora.parent().unwrap_or(root.path()))?;
        std::fs::write(&fedora, b"")?;
        assert_eq!(FirmwarePaths::discover(root.path()).secure_code, PathBuf::from(OVMF_SETS[1][0]));
        assert_eq!(virtiofsd(root.path()), PathBuf::from("/usr/lib/qemu/virtiofsd"));
        let rust = under(root.path(), "/usr/libexec/virtiofsd");
        std::fs::create_dir_all(rust.parent().unwrap_or(root.path()))?;
        std::fs::write(&rust, b"")?;
        assert_eq!(virtiofsd(root.path()), PathBuf::from("/usr/libexec/virtiofsd"));
        Ok(())
    }
}
