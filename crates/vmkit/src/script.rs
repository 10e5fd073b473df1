//! What `vmkit automate run` and its alias `yaml-automation-runner` (and `vmkit automate replay`) do once their
//! arguments are parsed: load the script, read the VNC password, run (or replay), print, and turn the outcome
//! into the exit code.
//!
//! Both binaries map their own flags onto [`RunOptions`] and call [`run_command`] (the alias compiles this very
//! file), so the alias behaves exactly like the vmkit command. Output contract: progress lines go to stderr as
//! the run goes; with `json` the [`automate::result::RunResult`] object is printed to stdout (nothing else is);
//! exit code 0 success, 1 a step or the health check failed, 2 bad input (script, arguments, password file, VNC
//! credentials). The library returns a [`Verdict`]; the exit code is chosen here.
//!
//! Script variables (`variables:` in a script, `${name}` in its `type` steps) are bound here from `--var
//! NAME=VALUE` and `--var-file NAME=PATH` ([`Vars`]) before the run. A secret variable must come from a file:
//! a value on the command line is visible to every local user in the process list.

use std::collections::BTreeMap;
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

/// Values for a script's variables, from the command line. `Debug` shows the names only.
#[derive(Clone, Default)]
pub struct Vars {
    /// Name → (value, whether it was given on the command line itself rather than in a file).
    values: BTreeMap<String, (String, bool)>,
}

impl std::fmt::Debug for Vars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.values.keys()).finish()
    }
}

impl Vars {
    /// Reads `--var NAME=VALUE` and `--var-file NAME=PATH` arguments: a file's value is its text without one
    /// trailing line ending (the read is bounded). A malformed argument, a name given twice or a file that cannot
    /// be read is an error (bad input); whether the script declares the names is checked by [`Vars::bind`].
    pub fn from_args(values: &[String], files: &[String]) -> Result<Self, String> {
        let mut vars = Self::default();
        for (flag, arg, in_argv) in
            values.iter().map(|a| ("--var", a, true)).chain(files.iter().map(|a| ("--var-file", a, false)))
        {
            let what = if in_argv { "NAME=VALUE" } else { "NAME=PATH" };
            let Some((name, rest)) = arg.split_once('=') else {
                let name = if in_argv { "…".to_owned() } else { format!("{arg:?}") };
                return Err(format!("{flag} {name}: expected {what} (no `=` in the argument)"));
            };
            if !automate::vars::valid_name(name) {
                return Err(format!(
                    "{flag} {name:?}: a variable name is lower-case letters, digits and `_`, starting with a letter \
                     or `_` (at most 64), as in the script's `variables:`"
                ));
            }
            let value = if in_argv { rest.to_owned() } else { read_var_file(name, Path::new(rest))? };
            if vars.values.insert(name.to_owned(), (value, in_argv)).is_some() {
                return Err(format!("{flag} {name}: the variable `{name}` is given more than once"));
            }
        }
        Ok(vars)
    }

    /// `script` with the values (and its declared defaults) substituted. Errors (bad input): a name the script
    /// does not declare, a declared variable with no default that was not given, a value that cannot be typed, a
    /// secret variable given on the command line instead of in a file. Values never appear in the messages.
    pub fn bind(&self, script: &Script) -> Result<Script, String> {
        for (name, (_, in_argv)) in &self.values {
            if *in_argv && script.variables.iter().any(|v| &v.name == name && v.secret) {
                return Err(format!(
                    "{}: `{name}` is a secret variable: give it with --var-file {name}=FILE, not --var (a value on \
                     the command line is visible to every local user in the process list)",
                    script.path.display()
                ));
            }
        }
        if self.values.is_empty() && script.variables.is_empty() {
            return Ok(script.clone());
        }
        let values = self.values.iter().map(|(name, (value, _))| (name.clone(), value.clone())).collect();
        script.bind(&values).map_err(|e| match e {
            automate::vars::BindError::Missing { .. } => {
                format!("{e} (with --var NAME=VALUE, or --var-file NAME=FILE for a secret)")
            }
            e => e.to_string(),
        })
    }
}

/// The value of `--var-file NAME=PATH`: the file's text without one trailing line ending.
fn read_var_file(name: &str, path: &Path) -> Result<String, String> {
    let text = userfile::read_to_string(path, userfile::Limit::Value)
        .map_err(|e| format!("--var-file {name}: cannot read {}: {}", path.display(), e.into_io()))?;
    let value = text.strip_suffix('\n').map_or(text.as_str(), |v| v.strip_suffix('\r').unwrap_or(v));
    Ok(value.to_owned())
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

/// Loads `config`, binds `vars`, runs it with `opts`, prints as described above and returns the exit code.
pub fn run_command(config: &Path, vars: &Vars, opts: &RunOptions, json: bool) -> u8 {
    let (script, runtime) = match prepare(config, vars) {
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
pub fn replay_command(config: &Path, vars: &Vars, opts: &ReplayOptions, json: bool) -> u8 {
    let (script, runtime) = match prepare(config, vars) {
        Ok(ready) => ready,
        Err(code) => return code,
    };
    let mut progress = |line: &str| eprintln!("{line}");
    let result = runtime.block_on(automate::runner::replay(&script, opts, &mut progress));
    finish(&result, json)
}

/// The script with its variables bound and a runtime, or the exit code.
fn prepare(config: &Path, vars: &Vars) -> Result<(Script, tokio::runtime::Runtime), u8> {
    let script = match automate::load_file(config) {
        Ok(s) => s,
        Err(e) => {
            for line in e.diagnostics() {
                eprintln!("{line}");
            }
            return Err(BAD_INPUT);
        }
    };
    let script = match vars.bind(&script) {
        Ok(bound) => bound,
        Err(e) => {
            eprintln!("vmkit: {e}");
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

    fn script(text: &str) -> Script {
        automate::load_str(text, Path::new("s.yaml")).expect("loads")
    }

    const DECLARES: &str = "variables:\n  who: {default: ada}\n  pw: {secret: true}\nboot_commands:\n  \
                            - type: 'hi ${who}'\n  - type: '${pw}'\n";

    fn typed(s: &Script) -> Vec<(String, bool)> {
        s.steps
            .iter()
            .filter_map(|st| match &st.action {
                automate::Action::Type(t) => Some((t.text.clone(), t.secret)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn variables_from_arguments_and_files_are_bound() {
        let dir = tempfile::tempdir().expect("tmp");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "s3cret line\r\n").expect("write");
        let file_arg = format!("pw={}", pw.display());
        let vars = Vars::from_args(&["who=Grace = Hopper".into()], std::slice::from_ref(&file_arg)).expect("vars");
        assert_eq!(format!("{vars:?}"), r#"{"pw", "who"}"#, "Debug shows names only");
        let bound = vars.bind(&script(DECLARES)).expect("binds");
        assert_eq!(typed(&bound), [("hi Grace = Hopper".to_owned(), false), ("s3cret line".to_owned(), true)]);
        assert!(bound.unbound().is_empty());
        // The default applies when a variable is not given; only one trailing line ending is taken off.
        std::fs::write(&pw, "two\n\n").expect("write");
        let bound = Vars::from_args(&[], &[file_arg]).expect("vars").bind(&script(DECLARES)).expect("binds");
        assert_eq!(typed(&bound), [("hi ada".to_owned(), false), ("two\n".to_owned(), true)]);
        // A script without variables and no values: as it was.
        let plain = script("boot_commands:\n  - type: '${x}'\n");
        assert_eq!(typed(&Vars::default().bind(&plain).expect("binds")), [("${x}".to_owned(), false)]);
    }

    #[test]
    fn bad_variables_are_refused_without_showing_values() {
        let s = script(DECLARES);
        let err = |values: &[&str], files: &[&str]| {
            let owned = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
            Vars::from_args(&owned(values), &owned(files)).and_then(|v| v.bind(&s)).expect_err("refused")
        };
        assert!(err(&["who"], &[]).contains("expected NAME=VALUE"));
        assert!(err(&["Who=x"], &[]).contains("lower-case"));
        assert!(err(&["=x"], &[]).contains("lower-case"));
        assert!(err(&["who=a", "who=b"], &[]).contains("more than once"));
        assert!(err(&["who=a"], &["who=/dev/null"]).contains("more than once"));
        assert!(err(&["nope=1"], &["pw=/dev/null"]).contains("declares no variable `nope`"));
        assert!(err(&[], &[]).contains("`pw`, with no default"), "{}", err(&[], &[]));
        assert!(err(&[], &[]).contains("--var-file"));
        let e = err(&["pw=hunter2"], &[]);
        assert!(e.contains("secret variable") && e.contains("--var-file pw=") && !e.contains("hunter2"), "{e}");
        let e = err(&["who=a\u{1}b"], &["pw=/dev/null"]);
        assert!(e.contains("control character"), "{e}");
        let e = err(&[], &["pw=/dev/zero"]);
        assert!(e.contains("/dev/zero") && e.contains("larger than"), "{e}");
        assert!(err(&[], &["pw=/nonexistent/pw"]).contains("cannot read /nonexistent/pw"));
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
