//! How loading a desktop config scales with the number of VMs: generates configs of N VMs (JSON, as a Nix module
//! hands them over, and TOML) and times `desktop::load_str` on each. Linear means the time per VM stays flat.
//!
//! Run: `cargo run --release -p desktop --example parse_scaling [N...]` (default 25000 50000 100000).

use std::fmt::Write as _;
use std::time::Instant;

use desktop::Format;
use desktop::model::FirmwarePaths;
use desktop::{LoadOptions, load_str};

fn json(n: usize) -> String {
    let mut s = String::from("{\"enable\": true, \"vms\": {");
    for i in 0..n {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(
            s,
            "{sep}\"vm{i}\": {{\"memory\": \"1G\", \"vcpus\": 1, \"macAddress\": \"52:54:00:{:02x}:{:02x}:{:02x}\"}}",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        );
    }
    s.push_str("}}");
    s
}

fn toml(n: usize) -> String {
    let mut s = String::from("enable = true\n");
    for i in 0..n {
        let _ = write!(
            s,
            "[vms.vm{i}]\nmemory = \"1G\"\nvcpus = 1\nmacAddress = \"52:54:00:{:02x}:{:02x}:{:02x}\"\n",
            (i >> 16) & 0xff,
            (i >> 8) & 0xff,
            i & 0xff
        );
    }
    s
}

fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![25_000, 50_000, 100_000] } else { sizes };
    let opts = LoadOptions {
        check_paths: false,
        firmware: FirmwarePaths::debian(),
        virtiofsd: "/usr/lib/qemu/virtiofsd".into(),
    };
    println!("format  VMs      bytes       load (s)  µs per VM");
    for n in sizes {
        for (name, format, text) in [("json", Format::Json, json(n)), ("toml", Format::Toml, toml(n))] {
            let started = Instant::now();
            let loaded = load_str("bench", &text, format, &opts).unwrap_or_else(|e| panic!("{e}"));
            let took = started.elapsed().as_secs_f64();
            assert_eq!(loaded.config.vms.len(), n);
            println!("{name:<7} {n:<8} {:<11} {took:<9.2} {:.1}", text.len(), took * 1e6 / n as f64);
        }
    }
}
