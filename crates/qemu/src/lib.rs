//! QEMU for vmkit: a typed command model, a supervised process, QMP, the serial port, ports, and the choice of
//! accelerator.
//!
//! * [`model`] — the machine as data ([`QemuCommand`]), rendered to argv with QEMU's escaping; [`script`]
//!   renders the same model as a POSIX `run` script.
//! * [`process`] — [`Qemu`]: start (ready when QMP answers), a future that resolves the moment QEMU exits (with
//!   its stderr), kill on drop, and the stop ladder (guest power-off → ACPI → `quit` → SIGKILL).
//! * [`qmp`] — an async QMP client with typed errors and an event stream.
//! * [`serial`] — wait for text in a serial log (failing at once if QEMU dies), type into a serial console.
//! * [`ports`] — free loopback ports and VNC displays, with a restart when QEMU loses a port race.
//! * [`swtpm`] — the TPM 2.0 emulator: its argv and a supervised process.
//! * [`accel`] — KVM or TCG, decided by a probe that boots a payload and times it, cached per host.
//!
//! This crate is a leaf: it knows nothing of images, VNC clients or scripts.

pub mod accel;
pub mod model;
mod opts;
pub mod ports;
pub mod process;
pub mod qmp;
pub mod script;
pub mod serial;
pub mod swtpm;

pub use accel::{AccelChoice, KvmProbe, ProbeReport, choose_accel};
pub use model::{
    Accel, Boot, Chardev, ChardevBackend, Cpu, CpuFeature, Device, DirectBoot, Display, Drive, DriveInterface,
    Firmware, Global, HostForward, ImageFormat, KernelCmdline, Machine, Media, ModelError, Protocol, QemuCommand,
    RtcBase, Serial, Smbios, Smp, Topology, Tpm, TpmModel, UserNet, Vga, Vnc, VncListen,
};
pub use ports::{free_tcp_port, free_vnc_display, pick_vnc_display, start_with_port_retry};
pub use process::{Exit, Qemu, QemuError, StartOptions, StopPlan, StopStep, Stopped};
pub use qmp::{Event, Greeting, Qmp, QmpError, QmpOptions, RunState, ScreendumpFormat, Secret, Status, TpmInfo};
pub use script::{RunScript, ScriptArg, VmState};
pub use serial::{Match, Pattern, SerialConsole, SerialError, SerialLog};
pub use swtpm::{Swtpm, SwtpmCommand, SwtpmError};
