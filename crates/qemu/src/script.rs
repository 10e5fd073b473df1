//! A POSIX `run` script rendered from the same [`QemuCommand`] a build used.
//!
//! Image builds ship a `run` script next to the image. Rendering it from the typed model (not from a template)
//! means the script starts exactly the machine the build tested. Every argv element is shell-quoted on its own:
//! safe words stay bare for readability, anything else goes in single quotes (a quote inside becomes `'\''`), so
//! spaces, quotes, `$`, backticks and commas in paths and values reach QEMU unchanged.
//!
//! Options: the script may run helper programs first (swtpm for a TPM), may `cd` to its own directory first (so an output directory that uses relative paths
//! works wherever it is moved) and may pass its own arguments on to QEMU (`"$@"`).

use std::ffi::OsStr;

use crate::model::{ModelError, QemuCommand};

/// How to render a run script.
#[derive(Debug, Clone, Default)]
pub struct RunScript {
    /// Comment lines after the shebang (e.g. what the image is, how to log in). Newlines start new comment lines.
    pub comments: Vec<String>,
    /// `cd` to the script's directory first, so relative paths in the model resolve next to the script.
    pub cd_to_script_dir: bool,
    /// Append the script's own arguments (`"$@"`) to QEMU's.
    pub pass_args: bool,
    /// Programs run (to completion) before QEMU, each a whole argv quoted word by word: e.g. swtpm with
    /// `--daemon`, which returns once it listens.
    pub before: Vec<Vec<std::ffi::OsString>>,
}

impl RunScript {
    /// Renders the script for `cmd`. Fails if the model is invalid or an argument is not UTF-8.
    pub fn render(&self, cmd: &QemuCommand) -> Result<String, ModelError> {
        let groups = cmd.arg_groups()?;
        let mut s = String::from("#!/bin/sh\n");
        for comment in &self.comments {
            for line in comment.lines() {
                if line.is_empty() {
                    s.push_str("#\n");
                } else {
                    s.push_str("# ");
                    s.push_str(line);
                    s.push('\n');
                }
            }
        }
        s.push_str("set -eu\n");
        if self.cd_to_script_dir {
            s.push_str("cd \"$(dirname \"$0\")\"\n");
        }
        for argv in &self.before {
            let Some((program, args)) = argv.split_first() else { continue };
            s.push_str(&quote_program(program)?);
            for arg in args {
                s.push(' ');
                s.push_str(&quote(arg)?);
            }
            s.push('\n');
        }
        s.push_str("exec ");
        s.push_str(&quote_program(cmd.program.as_os_str())?);
        for group in &groups {
            s.push_str(" \\\n   ");
            for arg in group {
                s.push(' ');
                s.push_str(&quote(arg)?);
            }
        }
        if self.pass_args {
            s.push_str(" \\\n    \"$@\"");
        }
        s.push('\n');
        Ok(s)
    }
}

/// Quotes one argument for a POSIX shell: bare if it is made only of characters no shell treats specially,
/// else in single quotes.
pub fn quote(arg: &OsStr) -> Result<String, ModelError> {
    let text = arg.to_str().ok_or_else(|| ModelError::NotUtf8 {
        what: "argument".to_owned(),
        value: arg.to_string_lossy().into_owned(),
    })?;
    Ok(quote_str(text, true))
}

fn quote_program(program: &OsStr) -> Result<String, ModelError> {
    let text = program.to_str().ok_or_else(|| ModelError::NotUtf8 {
        what: "QEMU program path".to_owned(),
        value: program.to_string_lossy().into_owned(),
    })?;
    // A leading word with '=' would be read as a variable assignment.
    Ok(quote_str(text, false))
}

fn quote_str(text: &str, allow_equals: bool) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ',' | ':' | '@' | '%' | '+');
    if !text.is_empty() && text.chars().all(|c| safe(c) || (allow_equals && c == '=')) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote(OsStr::new("-m")).unwrap(), "-m");
        assert_eq!(quote(OsStr::new("file=a,,b")).unwrap(), "file=a,,b");
        assert_eq!(quote(OsStr::new("a b")).unwrap(), "'a b'");
        assert_eq!(quote(OsStr::new("it's")).unwrap(), "'it'\\''s'");
        assert_eq!(quote(OsStr::new("")).unwrap(), "''");
        assert_eq!(quote(OsStr::new("$HOME")).unwrap(), "'$HOME'");
        assert_eq!(quote(OsStr::new("~/x")).unwrap(), "'~/x'");
        assert_eq!(quote_program(OsStr::new("/opt/a=b/qemu")).unwrap(), "'/opt/a=b/qemu'");
    }

    #[test]
    fn non_utf8_is_an_error() {
        use std::os::unix::ffi::OsStrExt;
        assert!(matches!(quote(OsStr::from_bytes(b"\xff")), Err(ModelError::NotUtf8 { .. })));
    }
}
