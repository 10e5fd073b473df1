//! The macOS machine profile, rendered by the `qemu` model, started for real: QEMU must accept every device and
//! CPU feature of the profile (Apple SMC with its OSK, the version's CPU model with AVX2, xHCI keyboard and
//! tablet, vmware-svga, AHCI disks, a virtio NIC) and OVMF must run and go looking for a boot disk. Under TCG
//! here; what macOS itself does on it needs a real Mac-capable KVM host (docs/macos.md).

use std::time::Duration;

use fetch::macos::MacosVersion;
use images::macos::machine::{APPLE_SMC_OSK, MacMachine};
use qemu::{Accel, Pattern, Qemu, SerialLog, StopPlan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_macos_profile_starts_qemu_and_ovmf_runs() {
    let dir = tempfile::tempdir().unwrap();
    let vars = dir.path().join("OVMF_VARS.fd");
    std::fs::copy("/usr/share/OVMF/OVMF_VARS_4M.fd", &vars).unwrap();
    // Blank disks: OVMF finds nothing to boot on them and says so on the console.
    let opencore = dir.path().join("opencore.img");
    std::fs::File::create(&opencore).unwrap().set_len(8 << 20).unwrap();
    let installer = dir.path().join("installer.img");
    std::fs::File::create(&installer).unwrap().set_len(8 << 20).unwrap();
    let system = dir.path().join("system.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&system)
        .arg("1G")
        .status()
        .unwrap();
    assert!(made.success());
    for version in [MacosVersion::Ventura, MacosVersion::Sequoia] {
        let machine = MacMachine {
            name: format!("vmkit-macos-{version}"),
            version,
            accel: Accel::Tcg,
            memory_mib: 1024,
            cpus: 2,
            ovmf_code: "/usr/share/OVMF/OVMF_CODE_4M.fd".into(),
            ovmf_vars: vars.clone(),
            opencore: opencore.clone(),
            installer: Some(installer.clone()),
            system: system.clone(),
            ssh_port: qemu::free_tcp_port(std::net::Ipv4Addr::LOCALHOST.into()).unwrap(),
            mac: "52:54:00:12:34:56".into(),
        };
        let mut cmd = machine.command();
        let argv = qemu::model::display_argv(&cmd.argv().unwrap());
        for needle in [
            format!("isa-applesmc,osk={APPLE_SMC_OSK}"),
            "+avx2".into(),
            "vendor=GenuineIntel".into(),
            "usb-tablet,bus=xhci.0".into(),
            "vmware-svga".into(),
            "ide-hd,bus=ide.2".into(),
            "virtio-net-pci".into(),
        ] {
            assert!(argv.contains(&needle), "{needle} missing from {argv}");
        }
        let log_path = dir.path().join(format!("serial-{version}.log"));
        cmd.serial_socket(dir.path().join(format!("serial-{version}.sock")), &log_path);
        cmd.qmp = Some(dir.path().join(format!("qmp-{version}.sock")));
        let qemu = Qemu::start(&cmd).await.unwrap();
        let mut log = SerialLog::new(&log_path);
        // OVMF's boot manager tries the AHCI disks in boot order and reports each on the console.
        let found = log.wait_for(&Pattern::text("BdsDxe"), Duration::from_secs(120), Some(&qemu)).await;
        let status = qemu.qmp().unwrap().query_status().await.unwrap();
        let _ = qemu.stop(StopPlan::kill()).await;
        let found = found.unwrap_or_else(|e| panic!("{version}: OVMF did not run: {e}\n{}", qemu.output()));
        assert!(found.text.contains("BdsDxe"));
        assert!(status.running, "{version}: {status:?}");
        let text = log.contents().unwrap();
        assert!(text.contains("SATA") || text.contains("HARDDISK"), "{version}: no disk tried:\n{text}");
    }
}
