//! How the busybox guest is started: one QEMU command model shared by `vmkit demo` and the test guests, so
//! what the demo shows is what the tests exercise.

use std::path::Path;

use qemu::{Accel, Display, Machine, QemuCommand, Vga, Vnc};

use super::busybox::BusyboxGuest;

/// What varies between launches of the busybox guest.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// The accelerator (from the KVM probe on real hosts).
    pub accel: Accel,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// VNC on 127.0.0.1 (the display number is picked at start, see [`qemu::start_with_port_retry`]).
    pub vnc: Vnc,
    /// The token shown in the guest's banner.
    pub id: Option<&'a str>,
    /// The serial port's Unix socket (for typing into the serial shell).
    pub serial_socket: &'a Path,
    /// Everything the guest writes to its serial port.
    pub serial_log: &'a Path,
    /// The QMP socket.
    pub qmp_socket: &'a Path,
    /// The VM's name (QEMU's `-name`, also the VNC desktop name).
    pub name: String,
}

impl BusyboxGuest {
    /// The QEMU command that boots this guest: q35, standard VGA (whose text console VNC shows), no default
    /// devices, no reboot (a panic ends QEMU), kernel and initramfs booted directly.
    pub fn qemu_command(&self, launch: &Launch<'_>) -> QemuCommand {
        let mut cmd = QemuCommand::new(launch.accel);
        cmd.name = Some(launch.name.clone());
        cmd.machine = Machine::new("q35");
        cmd.memory_mib = launch.memory_mib;
        cmd.direct_boot = Some(self.direct_boot(self.cmdline(launch.id)));
        cmd.no_defaults = true;
        cmd.no_reboot = true;
        cmd.vga = Some(Vga::Std);
        cmd.display = Some(Display::None);
        cmd.vnc = Some(launch.vnc.clone());
        cmd.serial_socket(launch.serial_socket, launch.serial_log);
        cmd.qmp = Some(launch.qmp_socket.to_owned());
        cmd
    }
}
