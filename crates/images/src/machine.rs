//! The one QEMU machine an image is built, tested and run on.
//!
//! The build, `vmkit image test` and the `run` script in the output directory all start the machine from
//! [`ImageMachine::command`], so what the build proved is what the user runs. They differ only in what they attach
//! around it: the build and the test add a QMP socket, a serial log and a pidfile and use a free SSH port; the run
//! script attaches the serial console to the terminal, uses the recipe's `sshPort`, and names its files relative
//! to its own directory.
//!
//! Choices: q35 with `-nodefaults` (no stray devices), virtio disk with `discard=unmap` (a `fstrim` in the guest
//! shrinks the image), the NoCloud seed as a second read-only virtio disk (every cloud kernel has virtio-blk and
//! iso9660; not every one has AHCI and a CD-ROM driver), a virtio RNG (first boot generates SSH host keys and must
//! not stall for entropy), user-mode networking whose only host forward is SSH on 127.0.0.1.

use std::path::PathBuf;

use qemu::{
    Accel, Device, DirectBoot, Display, Drive, HostForward, ImageFormat, KernelCmdline, QemuCommand, Serial, Smp,
    UserNet, Vga,
};

/// How the guest boots.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootKind {
    /// From the disk's own bootloader (cloud images).
    Disk,
    /// A kernel and initrd shipped next to the disk (the Debian source), root on the whole virtio disk.
    Kernel {
        /// The kernel.
        kernel: PathBuf,
        /// The initrd.
        initrd: PathBuf,
    },
}

/// The kernel command line of images that boot a shipped kernel: root is the whole first virtio disk (no
/// partition table, so cloud-init's resizefs can grow it in place), console on the first serial port, classic
/// interface names so the NIC is `eth0`.
pub fn kernel_cmdline() -> KernelCmdline {
    KernelCmdline::new().arg("root", "/dev/vda").flag("rw").arg("console", "ttyS0").arg("net.ifnames", "0")
}

/// An image's machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMachine {
    /// The guest name (`-name`).
    pub name: String,
    /// The accelerator.
    pub accel: Accel,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// vCPUs.
    pub cpus: u32,
    /// The qcow2 disk.
    pub disk: PathBuf,
    /// The NoCloud seed image, if attached.
    pub seed: Option<PathBuf>,
    /// How it boots.
    pub boot: BootKind,
    /// Host port forwarded (on 127.0.0.1) to the guest's port 22.
    pub ssh_port: u16,
}

impl ImageMachine {
    /// The machine as a QEMU model, without any way to watch it (no QMP, no serial).
    pub fn command(&self) -> QemuCommand {
        let mut cmd = QemuCommand::new(self.accel);
        cmd.name = Some(self.name.clone());
        cmd.memory_mib = self.memory_mib;
        cmd.smp = Some(Smp::cpus(self.cpus));
        cmd.no_defaults = true;
        cmd.display = Some(Display::None);
        cmd.vga = Some(Vga::None);
        if let BootKind::Kernel { kernel, initrd } = &self.boot {
            cmd.direct_boot =
                Some(DirectBoot { kernel: kernel.clone(), initrd: Some(initrd.clone()), cmdline: kernel_cmdline() });
        }
        // With -kernel QEMU's own boot loader takes boot index 0; the disk needs one only when it is booted.
        let mut device = Device::new("virtio-blk-pci");
        if self.boot == BootKind::Disk {
            device = device.prop("bootindex", "0");
        }
        let mut disk = Drive::with_device("disk0", &self.disk, ImageFormat::Qcow2, device);
        disk.discard_unmap = true;
        cmd.drives.push(disk);
        if let Some(seed) = &self.seed {
            let mut drive = Drive::with_device("seed", seed, ImageFormat::Raw, Device::new("virtio-blk-pci"));
            drive.readonly = true;
            cmd.drives.push(drive);
        }
        cmd.nets.push(UserNet::virtio("net0", vec![HostForward::tcp(self.ssh_port, 22)]));
        cmd.devices.push(Device::new("virtio-rng-pci"));
        cmd
    }

    /// The build's and the boot test's machine: QMP on `qmp`, the serial port on `serial_socket` and logged to
    /// `serial_log`, QEMU's pid in `pidfile`.
    pub fn supervised(
        &self,
        qmp: PathBuf,
        serial_socket: PathBuf,
        serial_log: PathBuf,
        pidfile: PathBuf,
    ) -> QemuCommand {
        let mut cmd = self.command();
        cmd.qmp = Some(qmp);
        cmd.serial_socket(serial_socket, serial_log);
        cmd.pidfile = Some(pidfile);
        cmd
    }

    /// The `run` script's machine: the serial console on the terminal.
    pub fn interactive(&self) -> QemuCommand {
        let mut cmd = self.command();
        cmd.serials.push(Serial::Stdio);
        cmd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine(boot: BootKind) -> ImageMachine {
        ImageMachine {
            name: "deb".into(),
            accel: Accel::Tcg,
            memory_mib: 2048,
            cpus: 2,
            disk: "disk.qcow2".into(),
            seed: Some("seed.iso".into()),
            boot,
            ssh_port: 2222,
        }
    }

    #[test]
    fn kernel_boot_argv() {
        let m = machine(BootKind::Kernel { kernel: "vmlinuz".into(), initrd: "initrd.img".into() });
        let argv: Vec<String> = m.interactive().args().unwrap().into_iter().map(|a| a.into_string().unwrap()).collect();
        let joined = argv.join(" ");
        for needle in [
            "-accel tcg,thread=multi",
            "-cpu max",
            "-m 2048",
            "-smp cpus=2",
            "-kernel vmlinuz",
            "-initrd initrd.img",
            "-append root=/dev/vda rw console=ttyS0 net.ifnames=0",
            "file=disk.qcow2,format=qcow2,if=none",
            "discard=unmap",
            "-device virtio-blk-pci,drive=disk0",
            "file=seed.iso,format=raw,if=none,readonly=on",
            "hostfwd=tcp:127.0.0.1:2222-:22",
            "-serial stdio",
            "-nodefaults",
        ] {
            assert!(joined.contains(needle), "missing {needle:?} in {joined}");
        }
    }

    #[test]
    fn disk_boot_has_no_kernel_and_supervision_adds_qmp_and_serial() {
        let m = machine(BootKind::Disk);
        let cmd = m.supervised("q.sock".into(), "s.sock".into(), "serial.log".into(), "qemu.pid".into());
        let joined: String =
            cmd.args().unwrap().into_iter().map(|a| a.into_string().unwrap()).collect::<Vec<_>>().join(" ");
        assert!(!joined.contains("-kernel"));
        assert!(joined.contains("virtio-blk-pci,bootindex=0,drive=disk0"), "{joined}");
        assert!(joined.contains("logfile=serial.log"), "{joined}");
        assert!(joined.contains("-pidfile qemu.pid"), "{joined}");
        assert_eq!(cmd.qmp_socket(), Some(std::path::Path::new("q.sock")));
    }
}
