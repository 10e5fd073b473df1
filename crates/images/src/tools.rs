//! The external programs image builds run (debootstrap, mkfs.ext4, qemu-img), run so that a cancelled build
//! leaves none of them behind and a failed one says why.
//!
//! Each runs in its own process group with stdout and stderr in a log file; if the future is dropped (Ctrl-C, a
//! failure elsewhere), the whole group is killed — debootstrap's children (dpkg, maintainer scripts in the chroot)
//! included. A failure carries the command line and the last lines of the log.

use std::path::Path;
use std::process::Stdio;

use serde::Deserialize;

/// An external program failed or could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// It could not be started.
    #[error("cannot run {program}: {source} (Debian package: {package})")]
    Spawn {
        /// The program.
        program: String,
        /// Which Debian package provides it.
        package: &'static str,
        /// Why.
        source: std::io::Error,
    },
    /// It exited non-zero.
    #[error("`{command}` failed ({status}); last output:\n{tail}")]
    Failed {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// The end of its output.
        tail: String,
    },
    /// Its output was not what was expected.
    #[error("`{command}`: unexpected output: {detail}")]
    Output {
        /// The command line.
        command: String,
        /// What was wrong.
        detail: String,
    },
}

/// Kills a process group when dropped, unless disarmed.
struct GroupKiller(Option<u32>);

impl GroupKiller {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            let _ = std::process::Command::new("kill").args(["-KILL", "--", &format!("-{pgid}")]).status();
        }
    }
}

fn shown(cmd: &tokio::process::Command) -> String {
    let std = cmd.as_std();
    let mut parts = vec![std.get_program().to_string_lossy().into_owned()];
    parts.extend(std.get_args().map(|a| a.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Runs `cmd` to completion with its output in `log`.
pub async fn run_logged(cmd: &mut tokio::process::Command, log: &Path, package: &'static str) -> Result<(), ToolError> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let command = shown(cmd);
    let spawn_err = |source| ToolError::Spawn { program: program.clone(), package, source };
    let file = std::fs::File::create(log).map_err(spawn_err)?;
    let err_file = file.try_clone().map_err(spawn_err)?;
    cmd.stdin(Stdio::null()).stdout(file).stderr(err_file).process_group(0).kill_on_drop(true);
    let mut child = cmd.spawn().map_err(spawn_err)?;
    let mut group = GroupKiller(child.id());
    let status = child.wait().await.map_err(spawn_err)?;
    group.disarm();
    if status.success() {
        return Ok(());
    }
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines.get(lines.len().saturating_sub(25)..).unwrap_or_default().join("\n");
    Err(ToolError::Failed { command, status: status.to_string(), tail })
}

/// Runs `cmd` and returns its stdout; stderr goes into the error when it fails.
pub async fn output(cmd: &mut tokio::process::Command, package: &'static str) -> Result<String, ToolError> {
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let command = shown(cmd);
    cmd.stdin(Stdio::null()).process_group(0).kill_on_drop(true);
    let out = cmd.output().await.map_err(|source| ToolError::Spawn { program, package, source })?;
    if !out.status.success() {
        return Err(ToolError::Failed {
            command,
            status: out.status.to_string(),
            tail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The first line `program ARGS…` prints (a version string).
pub async fn version(program: &str, args: &[&str], package: &'static str) -> Result<String, ToolError> {
    let text = output(tokio::process::Command::new(program).args(args), package).await?;
    Ok(text.lines().next().unwrap_or("").trim().to_owned())
}

/// What `qemu-img info` says about an image.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageInfo {
    /// `qcow2`, `raw`, …
    pub format: String,
    /// Size the guest sees.
    #[serde(rename = "virtual-size")]
    pub virtual_size: u64,
    /// Bytes used on the host.
    #[serde(rename = "actual-size", default)]
    pub actual_size: u64,
    /// The backing file, if any.
    #[serde(rename = "backing-filename", default)]
    pub backing: Option<String>,
}

/// `qemu-img info --output=json FILE`.
pub async fn image_info(file: &Path) -> Result<ImageInfo, ToolError> {
    let mut cmd = tokio::process::Command::new("qemu-img");
    cmd.args(["info", "--output=json"]).arg(file);
    let command = shown(&cmd);
    let text = output(&mut cmd, "qemu-utils").await?;
    serde_json::from_str(&text).map_err(|e| ToolError::Output { command, detail: e.to_string() })
}

/// A qcow2 overlay of `size` bytes on `backing` (of format `backing_format`).
pub async fn create_overlay(overlay: &Path, backing: &Path, backing_format: &str, size: u64) -> Result<(), ToolError> {
    output(
        tokio::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", backing_format, "-b"])
            .arg(backing)
            .arg(overlay)
            .arg(size.to_string()),
        "qemu-utils",
    )
    .await
    .map(drop)
}

/// An empty qcow2 disk of `size` bytes.
pub async fn create_disk(path: &Path, size: u64) -> Result<(), ToolError> {
    output(
        tokio::process::Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(path).arg(size.to_string()),
        "qemu-utils",
    )
    .await
    .map(drop)
}

/// Writes `from` (and its backing chain) as one standalone qcow2 `to`, leaving out unallocated and zeroed clusters.
pub async fn compact(from: &Path, to: &Path, log: &Path) -> Result<(), ToolError> {
    run_logged(
        tokio::process::Command::new("qemu-img").args(["convert", "-O", "qcow2"]).arg(from).arg(to),
        log,
        "qemu-utils",
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn overlay_info_and_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.qcow2");
        output(
            tokio::process::Command::new("qemu-img").args(["create", "-q", "-f", "qcow2"]).arg(&base).arg("64M"),
            "qemu-utils",
        )
        .await
        .unwrap();
        let overlay = dir.path().join("overlay.qcow2");
        create_overlay(&overlay, &base, "qcow2", 1 << 30).await.unwrap();
        let info = image_info(&overlay).await.unwrap();
        assert_eq!((info.format.as_str(), info.virtual_size), ("qcow2", 1 << 30));
        assert_eq!(info.backing.as_deref(), Some(base.to_str().unwrap()));
        let out = dir.path().join("out.qcow2");
        compact(&overlay, &out, &dir.path().join("log")).await.unwrap();
        let info = image_info(&out).await.unwrap();
        assert_eq!((info.virtual_size, info.backing), (1 << 30, None));
    }

    #[tokio::test]
    async fn failures_carry_the_command_and_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let err = image_info(&dir.path().join("missing.qcow2")).await.unwrap_err().to_string();
        assert!(err.contains("qemu-img info") && err.contains("missing.qcow2"), "{err}");
        let err = run_logged(
            tokio::process::Command::new("sh").args(["-c", "echo boom; exit 3"]),
            &dir.path().join("l"),
            "dash",
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("boom") && err.contains("exit status: 3"), "{err}");
        let err = version("no-such-program-vmkit", &[], "nothing").await.unwrap_err().to_string();
        assert!(err.contains("no-such-program-vmkit"), "{err}");
    }
}
