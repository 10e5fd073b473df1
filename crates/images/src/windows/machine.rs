//! The machine Windows is installed on and runs on.
//!
//! q35 with UEFI from two pflash chips — for Secure Boot OVMF's `secboot` code (flash writable only from SMM, so
//! `smm=on`) and a per-image copy of the variable store with Microsoft's keys enrolled (`OVMF_VARS_4M.ms.fd`) —,
//! a TPM 2.0 on CRB backed by swtpm whose state lives in the image directory, a USB tablet (an absolute pointer,
//! so a VNC pointer lands where it is aimed), the disk and network on VirtIO, the RTC in local time (Windows'
//! habit). Under KVM the CPU is the host's with Hyper-V enlightenments, which Windows uses for timers, spinlocks
//! and interrupts; under TCG the emulated `max` CPU without them (TCG implements none), and a warning that an
//! install takes hours.
//!
//! During the install three more drives are attached: the install ISO and the VirtIO media as SATA CD-ROMs on
//! q35's built-in AHCI (Windows PE has the driver; it has none for VirtIO yet), and the answer media as a
//! removable USB disk, the kind of drive Setup searches for `Autounattend.xml`. The disk comes first in the boot
//! order and the install ISO second: the empty disk falls through to the DVD on the first boot, and once Windows
//! is installed the DVD's "Press any key to boot from CD or DVD" is never reached again. The first boot's prompt is
//! answered by [`press_keys_during`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use qemu::{
    Accel, Cpu, CpuFeature, Device, Display, Drive, Firmware, HostForward, ImageFormat, Media, QemuCommand, RtcBase,
    Serial, Smp, Tpm, TpmModel, UserNet, Vga, Vnc,
};

/// OVMF's files in Debian's `ovmf` package.
pub const OVMF_DIR: &str = "/usr/share/OVMF";

/// The firmware files for a machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareFiles {
    /// The code (mapped read-only).
    pub code: PathBuf,
    /// The variable store template the image gets a copy of.
    pub vars_template: PathBuf,
    /// Secure Boot.
    pub secure_boot: bool,
}

impl FirmwareFiles {
    /// Debian's OVMF: Secure Boot code + Microsoft-keys VARS, or the plain pair.
    pub fn debian(secure_boot: bool) -> Self {
        let dir = Path::new(OVMF_DIR);
        if secure_boot {
            Self {
                code: dir.join("OVMF_CODE_4M.secboot.fd"),
                vars_template: dir.join("OVMF_VARS_4M.ms.fd"),
                secure_boot,
            }
        } else {
            Self { code: dir.join("OVMF_CODE_4M.fd"), vars_template: dir.join("OVMF_VARS_4M.fd"), secure_boot }
        }
    }

    /// The first file that is missing, if any.
    pub fn missing(&self) -> Option<&Path> {
        [&self.code, &self.vars_template].into_iter().find(|p| !p.is_file()).map(PathBuf::as_path)
    }
}

/// The install-time drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallMedia {
    /// Microsoft's install ISO.
    pub iso: PathBuf,
    /// The VirtIO driver media.
    pub virtio: PathBuf,
    /// The FAT answer media.
    pub answer: PathBuf,
}

/// A Windows machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowsMachine {
    /// Guest name.
    pub name: String,
    /// Accelerator.
    pub accel: Accel,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// vCPUs.
    pub cpus: u32,
    /// The system disk (qcow2).
    pub disk: PathBuf,
    /// Firmware code.
    pub firmware_code: PathBuf,
    /// This machine's copy of the variable store.
    pub vars: PathBuf,
    /// Secure Boot (SMM-protected flash).
    pub secure_boot: bool,
    /// swtpm's control socket, when the machine has a TPM.
    pub tpm_socket: Option<PathBuf>,
    /// Attached during the install only.
    pub install: Option<InstallMedia>,
    /// Host port forwarded (127.0.0.1) to the guest's SSH.
    pub ssh_port: u16,
}

/// Device ids the e2e tests and the docs refer to.
pub mod ids {
    /// The USB controller.
    pub const XHCI: &str = "xhci";
    /// The install ISO's drive.
    pub const INSTALL: &str = "install";
    /// The VirtIO media's drive.
    pub const VIRTIO: &str = "virtio";
    /// The answer media's drive.
    pub const ANSWER: &str = "answer";
    /// The system disk's drive.
    pub const DISK: &str = "disk0";
}

/// The Hyper-V enlightenments used under KVM.
pub const HYPERV: [(&str, &str); 9] = [
    ("hv_relaxed", "on"),
    ("hv_vapic", "on"),
    ("hv_spinlocks", "0x1fff"),
    ("hv_vpindex", "on"),
    ("hv_runtime", "on"),
    ("hv_synic", "on"),
    ("hv_stimer", "on"),
    ("hv_time", "on"),
    ("hv_frequencies", "on"),
];

impl WindowsMachine {
    /// The machine as a QEMU model (no QMP, serial or VNC).
    pub fn command(&self) -> QemuCommand {
        let mut cmd = QemuCommand::new(self.accel);
        cmd.name = Some(self.name.clone());
        cmd.memory_mib = self.memory_mib;
        cmd.smp = Some(Smp::cpus(self.cpus));
        cmd.no_defaults = true;
        if self.secure_boot {
            cmd.machine.smm = Some(true);
        }
        if self.accel == Accel::Kvm {
            let mut cpu = Cpu::model("host");
            cpu.features.extend(HYPERV.iter().map(|(k, v)| CpuFeature::Prop((*k).to_owned(), (*v).to_owned())));
            cmd.cpu = Some(cpu);
        }
        cmd.firmware =
            Firmware::Uefi { code: self.firmware_code.clone(), vars: self.vars.clone(), secure: self.secure_boot };
        cmd.rtc = Some(RtcBase::Localtime);
        cmd.vga = Some(Vga::Std);
        cmd.display = Some(Display::None);
        cmd.devices.push(Device::new("qemu-xhci").prop("id", ids::XHCI));
        cmd.devices.push(Device::new("usb-tablet").prop("bus", format!("{}.0", ids::XHCI)));
        let mut disk = Drive::with_device(
            ids::DISK,
            &self.disk,
            ImageFormat::Qcow2,
            Device::new("virtio-blk-pci").prop("bootindex", "0"),
        );
        disk.discard_unmap = true;
        cmd.drives.push(disk);
        if let Some(media) = &self.install {
            let cd = |id: &str, file: &Path, bus: &str, boot: Option<&str>| {
                let mut device = Device::new("ide-cd").prop("bus", bus);
                if let Some(index) = boot {
                    device = device.prop("bootindex", index);
                }
                let mut drive = Drive::with_device(id, file, ImageFormat::Raw, device);
                drive.media = Some(Media::Cdrom);
                drive.readonly = true;
                drive
            };
            cmd.drives.push(cd(ids::INSTALL, &media.iso, "ide.0", Some("1")));
            cmd.drives.push(cd(ids::VIRTIO, &media.virtio, "ide.1", None));
            let mut answer = Drive::with_device(
                ids::ANSWER,
                &media.answer,
                ImageFormat::Raw,
                Device::new("usb-storage").prop("bus", format!("{}.0", ids::XHCI)).prop("removable", "on"),
            );
            answer.readonly = true;
            cmd.drives.push(answer);
        }
        if let Some(socket) = &self.tpm_socket {
            cmd.tpm = Some(Tpm { id: "tpm0".to_owned(), socket: socket.clone(), model: TpmModel::Crb });
        }
        cmd.nets.push(UserNet::virtio("net0", vec![HostForward::tcp(self.ssh_port, 22)]));
        cmd.devices.push(Device::new("virtio-balloon-pci"));
        cmd
    }

    /// The build's machine: QMP, a serial log, a pidfile and VNC on 127.0.0.1 (for key presses and automation).
    pub fn supervised(&self, qmp: PathBuf, serial: (PathBuf, PathBuf), pidfile: PathBuf, vnc: Vnc) -> QemuCommand {
        let mut cmd = self.command();
        cmd.qmp = Some(qmp);
        cmd.serial_socket(serial.0, serial.1);
        cmd.pidfile = Some(pidfile);
        cmd.vnc = Some(vnc);
        cmd
    }

    /// The run script's machine: a window when a display is there is up to the user (`-display gtk` can be
    /// passed); the serial port on the terminal.
    pub fn interactive(&self) -> QemuCommand {
        let mut cmd = self.command();
        cmd.serials.push(Serial::Stdio);
        cmd
    }
}

/// The warning printed when Windows has to run under TCG.
pub const TCG_WARNING: &str = "no usable KVM: Windows runs under TCG emulation, where an install takes hours \
(plan for 4–8 h; KVM takes 20–40 min)";

/// Presses Enter over QMP every `every` for `window`: on the first boot from the install DVD, its boot loader
/// waits a few seconds for a key ("Press any key to boot from CD or DVD") and then gives up, and on an empty
/// disk that ends in a firmware screen. Pressing a key while it waits makes it boot the DVD; keys before or after
/// the prompt fall on the firmware's boot screen or Setup's first window, which ignore them (Setup's choices come
/// from the answer file). Returns how many presses were sent; stops early when QMP closes.
pub async fn press_keys_during(qmp: &qemu::Qmp, window: Duration, every: Duration) -> usize {
    let started = std::time::Instant::now();
    let mut sent = 0;
    while started.elapsed() < window {
        if qmp.is_closed() {
            break;
        }
        if qmp.send_keys(&["ret"]).await.is_ok() {
            sent += 1;
        }
        tokio::time::sleep(every).await;
    }
    sent
}

/// How long to press keys on the first boot: the firmware reaches the DVD in a second or two under KVM, ~10 s
/// under TCG, and the prompt waits ~5 s.
pub fn key_window(accel: Accel) -> Duration {
    match accel {
        Accel::Kvm => Duration::from_secs(30),
        Accel::Tcg => Duration::from_secs(90),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(accel: Accel) -> WindowsMachine {
        WindowsMachine {
            name: "win".into(),
            accel,
            memory_mib: 4096,
            cpus: 2,
            disk: "disk.qcow2".into(),
            firmware_code: "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd".into(),
            vars: "OVMF_VARS.fd".into(),
            secure_boot: true,
            tpm_socket: Some("tpm.sock".into()),
            install: Some(InstallMedia {
                iso: "win.iso".into(),
                virtio: "virtio.iso".into(),
                answer: "answer.img".into(),
            }),
            ssh_port: 2222,
        }
    }

    fn joined(cmd: &QemuCommand) -> String {
        cmd.args().unwrap().into_iter().map(|a| a.into_string().unwrap()).collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn kvm_gets_hyperv_tcg_does_not() {
        let kvm = joined(&machine(Accel::Kvm).command());
        assert!(kvm.contains("-cpu host,hv_relaxed=on,hv_vapic=on,hv_spinlocks=0x1fff"), "{kvm}");
        let tcg = joined(&machine(Accel::Tcg).command());
        assert!(tcg.contains("-cpu max") && !tcg.contains("hv_"), "{tcg}");
    }

    #[test]
    fn the_whole_profile() {
        let s = joined(&machine(Accel::Tcg).command());
        for needle in [
            "-machine q35,smm=on",
            "file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd,readonly=on",
            "if=pflash,format=raw,unit=1,file=OVMF_VARS.fd",
            "driver=cfi.pflash01,property=secure,value=on",
            "-rtc base=localtime",
            "-device virtio-blk-pci,bootindex=0,drive=disk0",
            "file=win.iso,format=raw,if=none,media=cdrom,readonly=on",
            "-device ide-cd,bus=ide.0,bootindex=1,drive=install",
            "-device ide-cd,bus=ide.1,drive=virtio",
            "-device usb-storage,bus=xhci.0,removable=on,drive=answer",
            "-tpmdev emulator,id=tpm0,chardev=tpm0-chr",
            "-device tpm-crb,tpmdev=tpm0",
            "-device qemu-xhci,id=xhci",
            "-device usb-tablet,bus=xhci.0",
            "hostfwd=tcp:127.0.0.1:2222-:22",
            "-device virtio-net-pci,netdev=net0",
        ] {
            assert!(s.contains(needle), "missing {needle:?} in {s}");
        }
        let mut installed = machine(Accel::Tcg);
        installed.install = None;
        installed.tpm_socket = None;
        installed.secure_boot = false;
        let s = joined(&installed.command());
        assert!(!s.contains("ide-cd") && !s.contains("usb-storage") && !s.contains("tpm") && !s.contains("smm"), "{s}");
    }
}
