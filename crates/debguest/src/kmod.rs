//! Linux kernel modules: what a `.ko` is called and what it needs, read from its `.modinfo` section.
//!
//! Kernel packages ship modules plain (`.ko`, Debian 12) or compressed one by one (`.ko.xz`: Debian 13, Fedora;
//! `.ko.zst`: Ubuntu). [`module_elf`] turns either into the ELF file, bounded in size, with pure Rust decoders:
//! the guest's busybox `insmod` is given the plain file, so it needs no decompressor.
//!
//! Debian's kernel package ships no `modules.dep` (the post-install script generates it with `depmod`), so the
//! guest builder reads each module's `.modinfo` section (`name=`, `depends=`) to load a module's dependencies
//! before it. This is a minimal, bounds-checked ELF64 little-endian section reader: a malformed file is an
//! error, never a panic.

use std::collections::{BTreeMap, BTreeSet};

/// A malformed module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a usable kernel module: {0}")]
pub struct ModinfoError(pub String);

/// What a module says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Modinfo {
    /// `name=` (underscores, as the kernel names modules).
    pub name: String,
    /// `depends=`: modules that must be loaded first.
    pub depends: Vec<String>,
}

/// Reads the `.modinfo` section of an ELF64 little-endian kernel module.
pub fn modinfo(elf: &[u8]) -> Result<Modinfo, ModinfoError> {
    let section = find_section(elf, ".modinfo")?;
    let mut info = Modinfo::default();
    for field in section.split(|&b| b == 0) {
        let Ok(text) = std::str::from_utf8(field) else { continue };
        if let Some(name) = text.strip_prefix("name=") {
            info.name = name.to_owned();
        } else if let Some(deps) = text.strip_prefix("depends=") {
            info.depends = deps.split(',').filter(|d| !d.is_empty()).map(normalize).collect();
        }
    }
    if info.name.is_empty() {
        return Err(ModinfoError(".modinfo has no name= field".to_owned()));
    }
    Ok(info)
}

/// Whether `path` names a kernel module file, plain or compressed.
pub fn is_module_file(path: &str) -> bool {
    [".ko", ".ko.xz", ".ko.zst"].iter().any(|suffix| path.ends_with(suffix))
}

/// The ELF bytes of the module file `path` whose content is `raw`: as they are for `.ko`, decompressed for
/// `.ko.xz` and `.ko.zst`. A result larger than `limit` bytes is an error (a hostile package cannot make vmkit
/// allocate without bound), as is data that does not decode.
pub fn module_elf(path: &str, raw: Vec<u8>, limit: u64) -> Result<Vec<u8>, ModinfoError> {
    use std::io::Read;
    let too_large = || ModinfoError(format!("{path} decompresses to more than {limit} bytes"));
    if path.ends_with(".ko.xz") {
        let mut out = Bounded { data: Vec::new(), limit };
        lzma_rs::xz_decompress(&mut raw.as_slice(), &mut out).map_err(|e| match e {
            lzma_rs::error::Error::IoError(io) if io.kind() == std::io::ErrorKind::FileTooLarge => too_large(),
            e => ModinfoError(format!("{path}: bad xz data: {e}")),
        })?;
        Ok(out.data)
    } else if path.ends_with(".ko.zst") {
        let decoder = ruzstd::decoding::StreamingDecoder::new(raw.as_slice())
            .map_err(|e| ModinfoError(format!("{path}: bad zstd data: {e}")))?;
        let mut data = Vec::new();
        decoder
            .take(limit.saturating_add(1))
            .read_to_end(&mut data)
            .map_err(|e| ModinfoError(format!("{path}: bad zstd data: {e}")))?;
        if data.len() as u64 > limit {
            return Err(too_large());
        }
        Ok(data)
    } else {
        Ok(raw)
    }
}

/// A `Write` into memory that refuses to grow past `limit` bytes.
struct Bounded {
    data: Vec<u8>,
    limit: u64,
}

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if (self.data.len() + buf.len()) as u64 > self.limit {
            return Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, "output limit reached"));
        }
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A module name as the kernel uses it: `-` and `_` are the same, `_` is canonical.
pub fn normalize(name: &str) -> String {
    name.replace('-', "_")
}

/// The modules to load for `wanted`, dependencies first (each once). `known` maps every available module to its
/// dependencies; `builtin` lists modules compiled into the kernel (skipped). Unknown names are returned as `Err`.
pub fn load_order(
    wanted: &[String],
    known: &BTreeMap<String, Vec<String>>,
    builtin: &BTreeSet<String>,
) -> Result<Vec<String>, String> {
    fn visit(
        name: &str,
        known: &BTreeMap<String, Vec<String>>,
        builtin: &BTreeSet<String>,
        done: &mut Vec<String>,
        stack: &mut Vec<String>,
    ) -> Result<(), String> {
        if done.iter().any(|d| d == name) || builtin.contains(name) {
            return Ok(());
        }
        if stack.iter().any(|s| s == name) {
            return Err(format!("dependency cycle through {name}"));
        }
        let deps = known.get(name).ok_or_else(|| format!("no module {name} (neither loadable nor built in)"))?;
        stack.push(name.to_owned());
        for dep in deps {
            visit(dep, known, builtin, done, stack)?;
        }
        stack.pop();
        done.push(name.to_owned());
        Ok(())
    }
    let mut done = Vec::new();
    for w in wanted {
        visit(&normalize(w), known, builtin, &mut done, &mut Vec::new())?;
    }
    Ok(done)
}

fn read<const N: usize>(data: &[u8], at: usize) -> Result<[u8; N], ModinfoError> {
    data.get(at..at.checked_add(N).ok_or_else(|| ModinfoError("offset overflow".to_owned()))?)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| ModinfoError(format!("truncated at byte {at}")))
}

fn u16_at(d: &[u8], at: usize) -> Result<usize, ModinfoError> {
    Ok(usize::from(u16::from_le_bytes(read(d, at)?)))
}

fn u32_at(d: &[u8], at: usize) -> Result<usize, ModinfoError> {
    usize::try_from(u32::from_le_bytes(read(d, at)?)).map_err(|_| ModinfoError("value too large".to_owned()))
}

fn u64_at(d: &[u8], at: usize) -> Result<usize, ModinfoError> {
    usize::try_from(u64::from_le_bytes(read(d, at)?)).map_err(|_| ModinfoError("value too large".to_owned()))
}

fn find_section<'a>(elf: &'a [u8], wanted: &str) -> Result<&'a [u8], ModinfoError> {
    if elf.get(..4) != Some(b"\x7fELF".as_slice()) {
        return Err(ModinfoError("no ELF magic".to_owned()));
    }
    if elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        return Err(ModinfoError("not a 64-bit little-endian ELF file".to_owned()));
    }
    let shoff = u64_at(elf, 0x28)?;
    let shentsize = u16_at(elf, 0x3a)?;
    let shnum = u16_at(elf, 0x3c)?;
    let shstrndx = u16_at(elf, 0x3e)?;
    if shentsize < 64 {
        return Err(ModinfoError(format!("section header size {shentsize} is too small")));
    }
    let header = |i: usize| -> Result<(usize, usize, usize), ModinfoError> {
        let base = i
            .checked_mul(shentsize)
            .and_then(|o| o.checked_add(shoff))
            .ok_or_else(|| ModinfoError("section header offset overflow".to_owned()))?;
        Ok((u32_at(elf, base)?, u64_at(elf, base + 24)?, u64_at(elf, base + 32)?))
    };
    let slice = |off: usize, size: usize| -> Result<&'a [u8], ModinfoError> {
        off.checked_add(size)
            .and_then(|end| elf.get(off..end))
            .ok_or_else(|| ModinfoError(format!("section at {off}+{size} lies outside the file")))
    };
    let (_, str_off, str_size) = header(shstrndx)?;
    let strtab = slice(str_off, str_size)?;
    for i in 0..shnum {
        let (name_off, off, size) = header(i)?;
        let name = strtab.get(name_off..).and_then(|s| s.split(|&b| b == 0).next()).unwrap_or(&[]);
        if name == wanted.as_bytes() {
            return slice(off, size);
        }
    }
    Err(ModinfoError(format!("no {wanted} section")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 with a section-name table and a `.modinfo` section.
    fn tiny_module(modinfo: &[u8]) -> Vec<u8> {
        let shstrtab = b"\0.shstrtab\0.modinfo\0";
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        let strtab_off = elf.len();
        elf.extend_from_slice(shstrtab);
        let modinfo_off = elf.len();
        elf.extend_from_slice(modinfo);
        let shoff = elf.len();
        elf[0x28..0x30].copy_from_slice(&(shoff as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        let mut section = |name: u32, off: usize, size: usize| {
            let mut h = vec![0u8; 64];
            h[..4].copy_from_slice(&name.to_le_bytes());
            h[24..32].copy_from_slice(&(off as u64).to_le_bytes());
            h[32..40].copy_from_slice(&(size as u64).to_le_bytes());
            elf.extend_from_slice(&h);
        };
        section(0, 0, 0);
        section(1, strtab_off, shstrtab.len());
        section(11, modinfo_off, modinfo.len());
        elf
    }

    #[test]
    fn reads_name_and_depends() {
        let elf = tiny_module(b"license=GPL\0depends=virtio,virtio-ring\0name=virtio_net\0");
        let info = modinfo(&elf).unwrap();
        assert_eq!(info.name, "virtio_net");
        assert_eq!(info.depends, vec!["virtio", "virtio_ring"]);
    }

    /// `raw` compressed by the real command-line tool (Debian's xz-utils or zstd).
    fn compressed_with(tool: &str, raw: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut child = std::process::Command::new(tool)
            .args(["-c", "-q"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{tool} (Debian package xz-utils / zstd): {e}"));
        child.stdin.take().expect("stdin").write_all(raw).expect("write");
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "{tool} failed");
        out.stdout
    }

    #[test]
    fn compressed_modules_are_read_like_plain_ones() {
        // Large enough to span several xz and zstd blocks.
        let mut info = b"license=GPL\0depends=virtio\0name=virtio_net\0".to_vec();
        info.extend((0..300_000u32).flat_map(|i| (i.wrapping_mul(2_654_435_761) >> 24).to_le_bytes()));
        let elf = tiny_module(&info);
        for (path, data) in [
            ("kernel/virtio_net.ko", elf.clone()),
            ("kernel/virtio_net.ko.xz", compressed_with("xz", &elf)),
            ("kernel/virtio_net.ko.zst", compressed_with("zstd", &elf)),
        ] {
            assert!(is_module_file(path));
            let plain = module_elf(path, data, 16 << 20).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(plain, elf, "{path}");
            assert_eq!(modinfo(&plain).unwrap().name, "virtio_net");
        }
        assert!(!is_module_file("kernel/virtio_net.ko.gz.sig"));
    }

    #[test]
    fn compressed_modules_are_bounded_and_checked() {
        let elf = tiny_module(&vec![b'x'; 1 << 20]);
        for (path, tool) in [("m.ko.xz", "xz"), ("m.ko.zst", "zstd")] {
            let packed = compressed_with(tool, &elf);
            let err = module_elf(path, packed.clone(), 64 << 10).unwrap_err();
            assert!(err.0.contains("decompresses to more than 65536 bytes"), "{path}: {err}");
            let mut broken = packed;
            let mid = broken.len() / 2;
            broken.truncate(mid);
            let err = module_elf(path, broken, 16 << 20).unwrap_err();
            assert!(err.0.contains("bad"), "{path}: {err}");
        }
    }

    #[test]
    fn malformed_files_are_errors() {
        assert!(modinfo(b"").is_err());
        assert!(modinfo(b"\x7fELF").is_err());
        let mut elf = tiny_module(b"name=x\0");
        let len = elf.len();
        elf.truncate(len - 64 - 30);
        assert!(modinfo(&elf).is_err());
        let mut elf = tiny_module(b"name=x\0");
        elf[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(modinfo(&elf).is_err());
    }

    #[test]
    fn dependencies_load_first_and_once() {
        let known: BTreeMap<String, Vec<String>> = [
            ("virtio_net", vec!["virtio", "net_failover"]),
            ("net_failover", vec!["failover"]),
            ("failover", vec![]),
            ("virtio", vec![]),
            ("virtio_blk", vec!["virtio"]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
        .collect();
        let builtin = BTreeSet::from(["virtio_console".to_owned()]);
        let order =
            load_order(&["virtio-net".into(), "virtio_blk".into(), "virtio_console".into()], &known, &builtin).unwrap();
        assert_eq!(order, vec!["virtio", "failover", "net_failover", "virtio_net", "virtio_blk"]);
        assert!(load_order(&["nope".into()], &known, &builtin).is_err());
    }
}
