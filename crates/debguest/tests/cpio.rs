//! The newc writer's output read back by GNU cpio, an independent implementation.

use std::io::Write;
use std::process::{Command, Stdio};

use debguest::initramfs::Archive;

fn sample() -> Archive {
    let mut a = Archive::new();
    a.file("bin/busybox", 0o755, b"\x7fELF fake".to_vec()).unwrap();
    a.file("etc/with space and, comma", 0o600, b"odd name\n".to_vec()).unwrap();
    a.file("etc/empty", 0o644, Vec::new()).unwrap();
    a.file("etc/three", 0o644, b"abc".to_vec()).unwrap();
    a.symlink("bin/sh", "busybox").unwrap();
    a.dir("tmp", 0o1777).unwrap();
    a
}

fn cpio(args: &[&str], input: &[u8], dir: &std::path::Path) -> std::process::Output {
    let mut child = Command::new("cpio")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("GNU cpio (Debian package cpio)");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "cpio {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn gnu_cpio_lists_what_was_written() {
    let mut a = sample();
    a.char_device("dev/console", 0o600, 5, 1).unwrap();
    let bytes = a.to_bytes().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let listed = String::from_utf8(cpio(&["-t", "--quiet"], &bytes, dir.path()).stdout).unwrap();
    let names: Vec<&str> = listed.lines().collect();
    assert_eq!(
        names,
        [
            "bin",
            "bin/busybox",
            "bin/sh",
            "dev",
            "dev/console",
            "etc",
            "etc/empty",
            "etc/three",
            "etc/with space and, comma",
            "tmp"
        ]
    );
    let verbose = String::from_utf8(cpio(&["-tv", "--quiet"], &bytes, dir.path()).stdout).unwrap();
    let console = verbose.lines().find(|l| l.ends_with("dev/console")).unwrap();
    assert!(console.starts_with("crw-------"), "{console}");
    assert!(console.contains("5,") && console.contains(" 1 "), "{console}");
    let tmp = verbose.lines().find(|l| l.ends_with(" tmp")).unwrap();
    assert!(tmp.starts_with("drwxrwxrwt"), "{tmp}");
}

#[test]
fn gnu_cpio_extracts_identical_files() {
    let bytes = sample().to_bytes().unwrap();
    let dir = tempfile::tempdir().unwrap();
    cpio(&["-i", "--quiet", "--make-directories", "--no-absolute-filenames"], &bytes, dir.path());
    let d = dir.path();
    assert_eq!(std::fs::read(d.join("bin/busybox")).unwrap(), b"\x7fELF fake");
    assert_eq!(std::fs::read(d.join("etc/with space and, comma")).unwrap(), b"odd name\n");
    assert_eq!(std::fs::read(d.join("etc/empty")).unwrap(), b"");
    assert_eq!(std::fs::read(d.join("etc/three")).unwrap(), b"abc");
    assert_eq!(std::fs::read_link(d.join("bin/sh")).unwrap(), std::path::Path::new("busybox"));
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(d.join(p)).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode("bin/busybox"), 0o755);
    assert_eq!(mode("etc/with space and, comma"), 0o600);
}

#[test]
fn output_is_reproducible() {
    assert_eq!(sample().to_bytes().unwrap(), sample().to_bytes().unwrap());
}
