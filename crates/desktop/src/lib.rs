//! Desktop VMs: declare tuned local VMs once and have libvirt run them.
//!
//! The config is the `virtualisation.desktopVMs` attribute set of the original (TOML, or JSON from Nix):
//! [`load`] reads and validates it with file:line:col diagnostics, applying the profile's defaults
//! ([`model`]). [`domain`] turns each VM into a typed libvirt domain and its XML; [`host`] says what the host
//! needs (kernel parameters, sysctl, mounts) and checks the running host; [`libvirt`] plans and applies the
//! config against a libvirt daemon (define, redefine, undefine, volumes, autostart) and runs the `vm`
//! operations; [`scripts`] writes the `vm-<name>` launchers. [`options`] describes every option (type,
//! default, documentation): the loader takes its keys from it, and the NixOS module is built from its JSON.
//!
//! Design: everything that can be decided without libvirt is pure (config → model → XML/plan), so it is
//! snapshot-tested and fast; the libvirt layer only compares and executes.

pub mod discover;
pub mod domain;
pub mod host;
pub mod libvirt;
pub mod load;
pub mod model;
pub mod options;
pub mod schema;
pub mod scripts;
pub mod values;
pub mod xml;

pub use diag::doc::Format;
pub use diag::{Diagnostic, Rejected, Severity};
pub use domain::Domain;
pub use load::{LoadError, LoadOptions, Loaded, load_file, load_str};
pub use model::{DesktopConfig, VmConfig};

/// The XML vmkit defines for a VM: the domain with vmkit's metadata.
pub fn domain_xml(cfg: &DesktopConfig, vm: &VmConfig) -> String {
    Domain::from_config(cfg, vm).with_metadata().to_xml()
}
