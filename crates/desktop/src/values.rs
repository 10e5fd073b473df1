//! Small value types of the config with strict parsers: sizes, CPU sets, UUIDs, MAC and PCI addresses, names.
//!
//! Each parser accepts one clear spelling and says in its error what the accepted spelling is; the original
//! passed strings like "16 GB" straight into templates and libvirt guessed (or rejected the whole domain).
//! Parsed values print back in one canonical form, so generated XML does not depend on how a user spelled them.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// A size in bytes, written with binary units: "16G", "512M", "2048K", "1T" (also "16GiB").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct ByteSize(pub u64);

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;
const TIB: u64 = 1024 * GIB;

impl ByteSize {
    /// From mebibytes.
    pub const fn mib(n: u64) -> Self {
        Self(n * MIB)
    }

    /// From gibibytes.
    pub const fn gib(n: u64) -> Self {
        Self(n * GIB)
    }

    /// A rounded, human form: "23.5G", "512M", "1000B".
    pub fn approx(self) -> String {
        for (unit, m) in [("T", TIB), ("G", GIB), ("M", MIB), ("K", KIB)] {
            if self.0 >= m {
                let whole = self.0 / m;
                let tenths = (self.0 % m) * 10 / m;
                return if tenths == 0 { format!("{whole}{unit}") } else { format!("{whole}.{tenths}{unit}") };
            }
        }
        format!("{}B", self.0)
    }

    /// The size in KiB, rounded up (libvirt's unit).
    pub fn kib_ceil(self) -> u64 {
        self.0.div_ceil(KIB)
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "invalid size \"{s}\": {why}; write a whole number and a binary unit K, M, G or T with no space, \
                 e.g. \"16G\" or \"512M\""
            )
        };
        let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        if digits_end == 0 {
            return Err(bad("it does not start with a number"));
        }
        let (number, unit) = s.split_at(digits_end);
        let n: u64 = number.parse().map_err(|_| bad("the number is too large"))?;
        if unit.starts_with(char::is_whitespace) {
            return Err(bad("there is a space before the unit"));
        }
        if unit.starts_with(['.', ',']) {
            return Err(bad("fractions are not accepted (use a smaller unit, e.g. \"1536M\")"));
        }
        let multiplier = match unit {
            "" => return Err(bad("the unit is missing")),
            "K" | "k" | "KiB" => KIB,
            "M" | "m" | "MiB" => MIB,
            "G" | "g" | "GiB" => GIB,
            "T" | "t" | "TiB" => TIB,
            "KB" | "MB" | "GB" | "TB" | "kB" | "mb" | "gb" | "tb" => {
                return Err(bad("decimal units (KB, MB, GB, TB) are ambiguous here; 1G means 1024M"));
            }
            _ => return Err(bad(&format!("unknown unit \"{unit}\""))),
        };
        n.checked_mul(multiplier).map(ByteSize).ok_or_else(|| bad("the size is too large"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        if b == 0 {
            return f.write_str("0");
        }
        for (unit, m) in [("T", TIB), ("G", GIB), ("M", MIB), ("K", KIB)] {
            if b >= m && b.is_multiple_of(m) {
                return write!(f, "{}{unit}", b / m);
            }
        }
        write!(f, "{b}B")
    }
}

/// A set of host CPUs in libvirt's cpuset syntax: "2", "0-3", "0-3,^2,8".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct CpuSet(pub BTreeSet<u32>);

/// The highest CPU number accepted in a cpuset (libvirt's own limit is larger; no host has more).
pub const MAX_CPU: u32 = 4095;

impl CpuSet {
    /// Every CPU in either set.
    pub fn union(&self, other: &CpuSet) -> CpuSet {
        CpuSet(self.0.union(&other.0).copied().collect())
    }

    /// The highest CPU in the set.
    pub fn max(&self) -> Option<u32> {
        self.0.last().copied()
    }
}

impl FromStr for CpuSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: String| {
            format!("invalid cpuset \"{s}\": {why}; write CPU numbers and ranges like \"2\", \"0-3\" or \"0-3,^2,8\"")
        };
        let mut set = BTreeSet::new();
        let mut excluded = BTreeSet::new();
        if s.is_empty() {
            return Err(bad("it is empty".into()));
        }
        let num = |t: &str| -> Result<u32, String> {
            let n: u32 = t.parse().map_err(|_| bad(format!("\"{t}\" is not a CPU number")))?;
            if n > MAX_CPU { Err(bad(format!("CPU {n} is above {MAX_CPU}"))) } else { Ok(n) }
        };
        for item in s.split(',') {
            if let Some(ex) = item.strip_prefix('^') {
                excluded.insert(num(ex)?);
            } else if let Some((a, b)) = item.split_once('-') {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(bad(format!("range {a}-{b} runs backwards")));
                }
                set.extend(a..=b);
            } else {
                set.insert(num(item)?);
            }
        }
        for e in &excluded {
            set.remove(e);
        }
        if set.is_empty() {
            return Err(bad("it selects no CPU".into()));
        }
        Ok(CpuSet(set))
    }
}

impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut iter = self.0.iter().copied().peekable();
        while let Some(start) = iter.next() {
            let mut end = start;
            while iter.peek() == Some(&(end + 1)) {
                end += 1;
                iter.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if start == end { write!(f, "{start}")? } else { write!(f, "{start}-{end}")? }
        }
        Ok(())
    }
}

/// A UUID, written in the usual 8-4-4-4-12 form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// A stable UUID for a VM that has none in its config: the first 16 bytes of SHA-256 over a vmkit-specific
    /// prefix and the name, marked as an RFC 9562 version 8 (custom) UUID. The same name always gives the same
    /// UUID, so redefining a domain keeps its identity.
    pub fn derived(name: &str) -> Self {
        let digest = Sha256::digest(format!("vmkit desktop domain uuid\0{name}").as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&digest[..16]);
        b[6] = (b[6] & 0x0f) | 0x80;
        b[8] = (b[8] & 0x3f) | 0x80;
        Uuid(b)
    }
}

impl FromStr for Uuid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("invalid UUID \"{s}\": expected 32 hex digits like \"4dea22b3-1d52-d8f3-2516-782e98ab3fa0\"");
        let dashed = s.len() == 36 && [8, 13, 18, 23].iter().all(|&i| s.as_bytes().get(i) == Some(&b'-'));
        let hex_digits: String = if dashed { s.chars().filter(|&c| c != '-').collect() } else { s.to_owned() };
        if hex_digits.len() != 32 || !hex_digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut b = [0u8; 16];
        hex::decode_to_slice(&hex_digits, &mut b).map_err(|_| bad())?;
        Ok(Uuid(b))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = hex::encode(self.0);
        write!(f, "{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
    }
}

/// An Ethernet MAC address, "52:54:00:12:34:56".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// A stable MAC for a VM that has none in its config: QEMU's locally administered prefix 52:54:00 and three
    /// bytes of SHA-256 over the name, so the guest keeps its DHCP lease across redefinitions.
    pub fn derived(name: &str) -> Self {
        let digest = Sha256::digest(format!("vmkit desktop mac\0{name}").as_bytes());
        MacAddr([0x52, 0x54, 0x00, digest[0], digest[1], digest[2]])
    }
}

impl FromStr for MacAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("invalid MAC address \"{s}\": {why}");
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 || parts.iter().any(|p| p.len() != 2) {
            return Err(bad("expected six hex pairs separated by ':', like \"52:54:00:12:34:56\""));
        }
        let mut b = [0u8; 6];
        for (i, p) in parts.iter().enumerate() {
            b[i] = u8::from_str_radix(p, 16).map_err(|_| bad(&format!("\"{p}\" is not a hex pair")))?;
        }
        if b[0] & 1 == 1 {
            return Err(bad("it is a multicast address (the first byte is odd); a NIC needs a unicast address"));
        }
        Ok(MacAddr(b))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

/// A host PCI device address, "0000:01:00.0" (the domain may be left out: "01:00.0").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciAddress {
    /// PCI domain (segment).
    pub domain: u16,
    /// Bus.
    pub bus: u8,
    /// Slot (device), 0–31.
    pub slot: u8,
    /// Function, 0–7.
    pub function: u8,
}

impl FromStr for PciAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid PCI address \"{s}\": expected DOMAIN:BUS:SLOT.FUNCTION in hex, like \"0000:01:00.0\" (see lspci -D)"
            )
        };
        let (rest, function) = s.rsplit_once('.').ok_or_else(bad)?;
        let parts: Vec<&str> = rest.split(':').collect();
        let (domain, bus, slot) = match parts.as_slice() {
            [d, b, sl] if d.len() == 4 => (*d, *b, *sl),
            [b, sl] => ("0000", *b, *sl),
            _ => return Err(bad()),
        };
        let hexn = |t: &str, max: u32, width: usize| -> Result<u32, String> {
            if t.is_empty() || t.len() > width {
                return Err(bad());
            }
            let v = u32::from_str_radix(t, 16).map_err(|_| bad())?;
            if v > max { Err(bad()) } else { Ok(v) }
        };
        let domain = hexn(domain, 0xffff, 4)?;
        let bus = hexn(bus, 0xff, 2)?;
        let slot = hexn(slot, 0x1f, 2)?;
        let function = hexn(function, 7, 1)?;
        Ok(PciAddress {
            domain: u16::try_from(domain).map_err(|_| bad())?,
            bus: u8::try_from(bus).map_err(|_| bad())?,
            slot: u8::try_from(slot).map_err(|_| bad())?,
            function: u8::try_from(function).map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:02x}:{:02x}.{:x}", self.domain, self.bus, self.slot, self.function)
    }
}

/// A PCI vendor:device ID pair, "10de:1b80", as the `vfio-pci.ids=` kernel parameter takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PciId {
    /// Vendor ID.
    pub vendor: u16,
    /// Device ID.
    pub device: u16,
}

impl FromStr for PciId {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("invalid PCI ID \"{s}\": expected VENDOR:DEVICE in hex, like \"10de:1b80\" (see lspci -nn)");
        let (v, d) = s.split_once(':').ok_or_else(bad)?;
        if v.len() != 4 || d.len() != 4 {
            return Err(bad());
        }
        Ok(PciId {
            vendor: u16::from_str_radix(v, 16).map_err(|_| bad())?,
            device: u16::from_str_radix(d, 16).map_err(|_| bad())?,
        })
    }
}

impl fmt::Display for PciId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.vendor, self.device)
    }
}

/// Checks a VM name: it becomes the libvirt domain name, a volume file name and part of the `vm-<name>` command.
pub fn check_vm_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '+' | '-');
    let starts_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !name.is_empty() && name.len() <= 64 && starts_ok && name.chars().all(ok_char) {
        return Ok(());
    }
    let why = if name.is_empty() {
        "it is empty".to_owned()
    } else if name.contains('/') {
        "libvirt rejects '/' in domain names".to_owned()
    } else if name.len() > 64 {
        "it is longer than 64 characters".to_owned()
    } else if !starts_ok {
        "it must start with a letter or digit".to_owned()
    } else {
        let c = name.chars().find(|&c| !ok_char(c)).unwrap_or(' ');
        format!("{c:?} is not allowed")
    };
    Err(format!(
        "invalid VM name \"{name}\": {why}; use letters, digits, '.', '_', '+' and '-' (it names the libvirt domain, \
         its disk volume and the vm-<name> command)"
    ))
}

/// Checks a virtiofs tag (what the guest passes to `mount -t virtiofs TAG DIR`): at most 36 bytes.
pub fn check_share_tag(tag: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    if tag.is_empty() || tag.len() > 36 || !tag.chars().all(ok_char) {
        return Err(format!(
            "invalid shared folder tag \"{tag}\": a virtiofs tag is 1 to 36 characters of letters, digits, '.', '_' \
             and '-' (the guest mounts it with `mount -t virtiofs {tag} DIR`)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!("16G".parse(), Ok(ByteSize::gib(16)));
        assert_eq!("16GiB".parse(), Ok(ByteSize::gib(16)));
        assert_eq!("512m".parse(), Ok(ByteSize::mib(512)));
        assert_eq!("2048K".parse::<ByteSize>().map(ByteSize::kib_ceil), Ok(2048));
        for bad in ["16 GB", "16GB", "16", "G", "1.5G", "16X", "", "-1G", "99999999999999999999G", "20000000T"] {
            let err = bad.parse::<ByteSize>().expect_err(bad);
            assert!(err.contains(&format!("\"{bad}\"")), "{err}");
        }
        assert!("16 GB".parse::<ByteSize>().unwrap_err().contains("space"));
        assert_eq!(ByteSize::gib(16).to_string(), "16G");
        assert_eq!(ByteSize::mib(1536).to_string(), "1536M");
        assert_eq!(ByteSize(1000).to_string(), "1000B");
        assert_eq!(ByteSize(24_684_084 * 1024).approx(), "23.5G");
        assert_eq!(ByteSize::mib(512).approx(), "512M");
    }

    #[test]
    fn cpusets() {
        let s: CpuSet = "0-3,^2,8".parse().unwrap_or_default();
        assert_eq!(s.0.iter().copied().collect::<Vec<_>>(), vec![0, 1, 3, 8]);
        assert_eq!(s.to_string(), "0-1,3,8");
        for bad in ["", "3-1", "a", "0-", "^1", "5000", "1,,2"] {
            assert!(bad.parse::<CpuSet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn uuids() {
        let u: Uuid = "4DEA22B3-1D52-D8F3-2516-782E98AB3FA0".parse().unwrap_or(Uuid([0; 16]));
        assert_eq!(u.to_string(), "4dea22b3-1d52-d8f3-2516-782e98ab3fa0");
        assert_eq!("4dea22b31d52d8f32516782e98ab3fa0".parse(), Ok(u));
        assert!("4dea22b3-1d52-d8f3-2516-782e98ab3fa".parse::<Uuid>().is_err());
        assert!("4dea22b3-1d52-d8f3-2516-782e98ab3fag".parse::<Uuid>().is_err());
        let d = Uuid::derived("win");
        assert_eq!(d, Uuid::derived("win"));
        assert_ne!(d, Uuid::derived("win2"));
        assert_eq!(d.to_string().as_bytes()[14], b'8', "version 8: {d}");
    }

    #[test]
    fn macs() {
        assert_eq!("52:54:00:AB:cd:01".parse::<MacAddr>().map(|m| m.to_string()), Ok("52:54:00:ab:cd:01".into()));
        for bad in ["52:54:00:ab:cd", "01:00:5e:00:00:01", "52-54-00-ab-cd-01", "52:54:00:ab:cd:0g"] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
        assert_eq!(MacAddr::derived("a").0[..3], [0x52, 0x54, 0x00]);
    }

    #[test]
    fn pci() {
        let a: PciAddress = "0000:0a:1f.7".parse().unwrap_or(PciAddress { domain: 9, bus: 9, slot: 9, function: 9 });
        assert_eq!(a.to_string(), "0000:0a:1f.7");
        assert_eq!("01:00.1".parse::<PciAddress>().map(|a| a.to_string()), Ok("0000:01:00.1".into()));
        for bad in ["01:00", "0000:01:20.0", "0000:01:00.8", "00000:01:00.0", "zz:00.0", "1:2:3:4.0"] {
            assert!(bad.parse::<PciAddress>().is_err(), "{bad}");
        }
        assert_eq!("10DE:1b80".parse::<PciId>().map(|i| i.to_string()), Ok("10de:1b80".into()));
        assert!("10de-1b80".parse::<PciId>().is_err());
    }

    #[test]
    fn names() {
        assert!(check_vm_name("win11-dev_2.0").is_ok());
        for bad in ["", "a/b", "-x", ".hidden", "has space", "ünï", &"x".repeat(65)] {
            assert!(check_vm_name(bad).is_err(), "{bad}");
        }
        assert!(check_vm_name("a/b").unwrap_err().contains("'/'"));
        assert!(check_share_tag("home").is_ok());
        assert!(check_share_tag(&"t".repeat(37)).is_err());
        assert!(check_share_tag("a b").is_err());
    }
}
