//! Saying what a file is when it is not what was expected.
//!
//! A download that should have been an ISO is often an HTML error or login page, a compressed archive, or cut off;
//! the error should say so ("an HTML page (starts with <!DOCTYPE html>)") instead of "bad magic". [`describe`]
//! looks only at the first bytes it is given.

/// How many leading bytes [`describe`] looks at; callers read this many (or fewer, for short files).
pub const SNIFF_LEN: usize = 512;

/// Describes a file from its first bytes and its total size, for error messages.
pub fn describe(head: &[u8], size: u64) -> String {
    if size == 0 {
        return "an empty file".to_string();
    }
    let magic: &[(&[u8], &str)] = &[
        (b"\x1f\x8b", "a gzip-compressed file"),
        (b"\xfd7zXZ\0", "an xz-compressed file"),
        (b"\x28\xb5\x2f\xfd", "a zstd-compressed file"),
        (b"BZh", "a bzip2-compressed file"),
        (b"PK\x03\x04", "a ZIP archive"),
        (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
        (b"Rar!", "a RAR archive"),
        (b"QFI\xfb", "a qcow2 disk image"),
        (b"MSWIM\0\0\0", "a WIM image (not an ISO)"),
        (b"\x7fELF", "an ELF executable"),
        (b"MZ", "a Windows executable"),
        (b"%PDF", "a PDF document"),
        (b"\x89PNG", "a PNG image"),
        (b"<?xml", "an XML document"),
    ];
    for (m, what) in magic {
        if head.starts_with(m) {
            return (*what).to_string();
        }
    }
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let trimmed = trim_ascii_start(text);
    let lower: Vec<u8> = trimmed.iter().take(16).map(u8::to_ascii_lowercase).collect();
    if lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html") {
        return format!("an HTML page (starts with {})", quote_start(trimmed));
    }
    if looks_like_text(text) {
        return format!("a text file (starts with {})", quote_start(trimmed));
    }
    if head.len() < 16 {
        return format!("{size} bytes of unknown data");
    }
    let hex: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("unknown data (first bytes {})", hex.join(" "))
}

fn trim_ascii_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

fn looks_like_text(b: &[u8]) -> bool {
    !b.is_empty() && std::str::from_utf8(b).is_ok_and(|s| s.chars().all(|c| !c.is_control() || c.is_whitespace()))
}

/// The first line of text (up to 40 characters, up to the first `>` for markup), printable characters only.
fn quote_start(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let line = s.lines().next().unwrap_or("");
    let mut out = String::new();
    for c in line.chars().take(40) {
        if c.is_control() {
            break;
        }
        out.push(c);
        if c == '>' && out.starts_with('<') {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn names_what_a_download_really_is() {
        assert_eq!(
            describe(b"<!DOCTYPE html>\n<html><head><title>404</title>", 1000),
            "an HTML page (starts with <!DOCTYPE html>)"
        );
        assert_eq!(describe(b"  <html lang=\"en\">", 50), "an HTML page (starts with <html lang=\"en\">)");
        assert_eq!(describe(b"\x1f\x8b\x08\0", 4), "a gzip-compressed file");
        assert_eq!(describe(b"", 0), "an empty file");
        assert_eq!(describe(b"hello world\nsecond", 18), "a text file (starts with hello world)");
        assert_eq!(describe(&[0u8; 64], 1 << 20), "unknown data (first bytes 00 00 00 00 00 00 00 00)");
    }
}
