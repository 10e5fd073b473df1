//! What `vmkit automate run` and its alias `yaml-automation-runner` (and `vmkit automate replay`) do once their
//! arguments are parsed: load the script, read the VNC password, run (or replay), print, and turn the outcome
//! into the exit code.
//!
//! Both binaries map their own flags onto [`RunOptions`] and call [`run_command`] (the alias compiles this very
//! file), so the alias behaves exactly like the vmkit command. Output contract: progress lines go to stderr as
//! the run goes; with `json` the [`automate::result::RunResult`] object is printed to stdout (nothing else is);
//! exit code 0 success, 1 a step or the health check failed, 2 bad input (script, arguments, password file, VNC
//! credentials). The library returns a [`Verdict`]; the exit code is chosen here.

use std::path::Path;

use automate::result::{RunResult, Verdict};
use automate::runner::{ReplayOptions, RunOptions};
use automate::script::{Script, Secret};

use crate::exit::{BAD_INPUT, FAILED, OK};

/// The exit code of a run that ended with `verdict`.
pub fn exit_code(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Passed => OK,
        Verdict::Failed => FAILED,
        Verdict::BadInput => BAD_INPUT,
    }
}

/// Reads a password file: its first line, without the line ending. The one reader of `--password-file` for every
/// command (`vmkit screen`, `vmkit automate run`, `yaml-automation-runner`); the read is bounded, so a wrong path
/// such as `/dev/zero` fails at once.
pub fn read_password_file(path: &Path) -> Result<Secret, String> {
    let text = userfile::read_to_string(path, userfile::Limit::Password)
        .map_err(|e| format!("cannot read password file {}: {}", path.display(), e.into_io()))?;
    let first = text.lines().next().unwrap_or_default();
    if first.is_empty() {
        return Err(format!("password file {} is empty", path.display()));
    }
    Ok(Secret::new(first))
}

/// Splits `HOST[:PORT]` (`[v6]:PORT` for IPv6 literals).
pub fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| format!("{s:?}: missing ']'"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(p, s)?),
            None if after.is_empty() => None,
            None => return Err(format!("{s:?}: expected [HOST]:PORT")),
        };
        return Ok((host.to_owned(), port));
    }
    match s.rsplit_once(':') {
        Some((host, _)) if host.contains(':') => Ok((s.to_owned(), None)), // a bare IPv6 address
        Some((host, port)) if !host.is_empty() => Ok((host.to_owned(), Some(parse_port(port, s)?))),
        Some(_) => Err(format!("{s:?}: missing host")),
        None if s.is_empty() => Err("empty host".to_owned()),
        None => Ok((s.to_owned(), None)),
    }
}

fn parse_port(p: &str, whole: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{whole:?}: the port must be a number from 1 to 65535")),
        Ok(port) => Ok(port),
    }
}

/// Loads `config`, runs it with `opts`, prints as described above and returns the exit code.
pub fn run_command(config: &Path, opts: &RunOptions, json: bool) -> u8 {
    let (script, runtime) = match prepare(config) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let mut progress = |line: &str| eprintln!("{line}");
    let result = runtime.block_on(automate::runner::run(&script, opts, &mut progress));
    finish(&result, json)
}

/// Loads `config`, replays it against a recording (`vmkit automate replay`), prints like [`run_command`] and
/// returns the exit code: 0 the script passed against the recording, 1 a step failed (text not found, input other
/// than the recording's), 2 bad input (script, arguments, a recording that cannot be read).
pub fn replay_command(config: &Path, opts: &ReplayOptions, json: bool) -> u8 {
    let (script, runtime) = match prepare(config) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let mut progress = |line: &str| eprintln!("{line}");
    let result = runtime.block_on(automate::runner::replay(&script, opts, &mut progress));
    finish(&result, json)
}

/// The script and a runtime, or the exit code.
fn prepare(config: &Path) -> Result<(Script, tokio::runtime::Runtime), u8> {
    let script = match automate::load_file(config) {
        Ok(s) => s,
        Err(e) => {
            for line in e.diagnostics() {
                eprintln!("{line}");
            }
            return Err(BAD_INPUT);
        }
    };
    match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => Ok((script, rt)),
        Err(e) => {
            eprintln!("vmkit: cannot start the async runtime: {e}");
            Err(FAILED)
        }
    }
}

/// Prints the result (JSON on stdout when asked, a summary on stderr) and returns its exit code.
fn finish(result: &RunResult, json: bool) -> u8 {
    if json {
        match serde_json::to_string_pretty(result) {
            Ok(text) => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                // A reader that went away (`… --json | head`) is not worth a message; other failures are.
                if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush())
                    && e.kind() != std::io::ErrorKind::BrokenPipe
                {
                    eprintln!("vmkit: cannot write the result to stdout: {e}");
                }
            }
            Err(e) => eprintln!("vmkit: cannot encode the result as JSON: {e}"),
        }
    }
    let passed = result.steps.iter().filter(|s| s.outcome == automate::result::Outcome::Passed).count();
    match &result.error {
        None => {
            eprintln!("vmkit: run passed ({passed}/{} steps, {:.1} s)", result.steps.len(), result.duration_ms / 1000.0)
        }
        Some(err) => eprintln!("vmkit: run failed (exit {}): {err}", exit_code(result.verdict)),
    }
    exit_code(result.verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_the_json_result_s() {
        for v in [Verdict::Passed, Verdict::Failed, Verdict::BadInput] {
            assert_eq!(exit_code(v), v.json_code(), "{v:?}");
        }
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("10.0.2.15"), Ok(("10.0.2.15".into(), None)));
        assert_eq!(split_host_port("localhost:2222"), Ok(("localhost".into(), Some(2222))));
        assert_eq!(split_host_port("[::1]:22"), Ok(("::1".into(), Some(22))));
        assert_eq!(split_host_port("::1"), Ok(("::1".into(), None)));
        assert!(split_host_port("host:0").is_err());
        assert!(split_host_port("host:http").is_err());
        assert!(split_host_port(":22").is_err());
    }

    #[test]
    fn password_file_first_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("pw");
        std::fs::write(&p, "s3cret\r\nignored\n").expect("write");
        assert_eq!(read_password_file(&p).expect("read").expose(), "s3cret");
        std::fs::write(&p, "").expect("write");
        assert!(read_password_file(&p).is_err());
    }
}
