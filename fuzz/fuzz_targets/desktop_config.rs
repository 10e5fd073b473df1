//! Fuzzes the desktop-VM config loader, TOML and JSON (the first byte picks the format): arbitrary text as a
//! config file, loaded without touching the host (no path checks, fixed firmware paths).
//!
//! Properties beyond "no panic, no hang, no huge allocation": every diagnostic points into the text and says
//! something; a config that loads renders, for every VM, domain XML that is well-formed.

#![no_main]

use std::path::PathBuf;

use desktop::Format;
use desktop::model::FirmwarePaths;
use desktop::{Domain, LoadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let format = if selector & 1 == 0 { Format::Toml } else { Format::Json };
    let opts = LoadOptions {
        check_paths: false,
        firmware: FirmwarePaths {
            secure_code: PathBuf::from("/fw/OVMF_CODE_4M.secboot.fd"),
            secure_vars: PathBuf::from("/fw/OVMF_VARS_4M.ms.fd"),
            code: PathBuf::from("/fw/OVMF_CODE_4M.fd"),
            vars: PathBuf::from("/fw/OVMF_VARS_4M.fd"),
        },
        virtiofsd: PathBuf::from("/usr/libexec/virtiofsd"),
    };
    let lines = text.lines().count() + 1;
    let check = |d: &desktop::Diagnostic| {
        assert!(d.line >= 1 && d.line <= lines, "line {} of {lines}: {}", d.line, d.message);
        assert!(d.col >= 1, "{}", d.message);
        assert!(!d.message.is_empty());
    };
    match desktop::load_str("fuzz", text, format, &opts) {
        Ok(loaded) => {
            loaded.warnings.iter().for_each(check);
            for vm in loaded.config.vms.values() {
                let xml = Domain::from_config(&loaded.config, vm).to_xml();
                if let Err(e) = roxmltree::Document::parse(&xml) {
                    panic!("domain XML is not well-formed ({e}):\n{xml}");
                }
            }
        }
        Err(errors) => {
            assert!(!errors.0.is_empty());
            errors.0.iter().for_each(check);
        }
    }
});
