//! A POSIX `run` script rendered from the same [`QemuCommand`] a build used.
//!
//! Image builds ship a `run` script next to the image. Rendering it from the typed model (not from a template)
//! means the script starts exactly the machine the build tested. Every argv element is shell-quoted on its own:
//! safe words stay bare for readability, anything else goes in single quotes (a quote inside becomes `'\''`), so
//! spaces, quotes, `$`, backticks and commas in paths and values reach QEMU unchanged.
//!
//! Options: the script may run helper programs first (swtpm for a TPM), may `cd` to its own directory first (so an
//! output directory that uses relative paths works wherever it is moved) and may pass its own arguments on to QEMU
//! (`"$@"`).
//!
//! **A VM's own changes never live in the image.** With [`RunScript::state`], the script boots a qcow2 overlay in a
//! state directory beside the image (`IMAGE.state/`, or `$VMKIT_STATE`) instead of the built disk: the image stays
//! as built, and a rebuild (which replaces the image directory) never touches what the user did in the VM. At its
//! first run the script pins the files the machine reads into the state (hard links, copies across file systems)
//! and copies those it writes (firmware variables, TPM state), so an overlay keeps a valid backing file and kernel
//! after a rebuild: the VM goes on booting the build it was
//! made from, and the script says so and how to start over from the new build. The state is made under a
//! temporary name and renamed into place, so an interrupted first run leaves nothing half-made.

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
    pub before: Vec<Vec<ScriptArg>>,
    /// Keep the VM's changes in a state directory beside the image (module docs). QEMU and the programs in
    /// [`RunScript::before`] then run in the state's copy of this build: relative paths name the pinned and
    /// copied files, and the overlay is [`VmState::OVERLAY`]. Needs [`RunScript::cd_to_script_dir`].
    pub state: Option<VmState>,
}

/// The state directory of a VM booted by a run script ([`RunScript::state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmState {
    /// This build's identity (letters, digits, `.`, `_`, `-`): the state records the build it was made from.
    pub build: String,
    /// The image's files the machine reads, relative to the script, pinned into the state at its first run.
    pub pinned: Vec<std::path::PathBuf>,
    /// The image's disk, one of `pinned`: the VM writes to an overlay on it.
    pub disk: std::path::PathBuf,
    /// Files and directories the VM writes to (firmware variables, TPM state), relative to the script: copied
    /// into the state at its first run, so each VM has its own and the image keeps the built ones.
    pub copied: Vec<std::path::PathBuf>,
}

impl VmState {
    /// The overlay's path as QEMU sees it (QEMU runs in the state's directory for this build).
    pub const OVERLAY: &str = "../disk.qcow2";
    /// The state directory of the image directory `image`: `IMAGE.state` beside it.
    pub fn dir_for(image: &std::path::Path) -> std::path::PathBuf {
        let mut name = image.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".state");
        image.with_file_name(name)
    }

    fn check(&self) -> Result<(), ModelError> {
        let safe_id = !self.build.is_empty()
            && !self.build.starts_with('.')
            && self.build.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !safe_id {
            return Err(ModelError::Inconsistent(format!("build id {:?} is not a plain file name", self.build)));
        }
        for p in self.pinned.iter().chain(&self.copied) {
            let plain =
                p.components().count() == 1 && matches!(p.components().next(), Some(std::path::Component::Normal(_)));
            if !plain {
                return Err(ModelError::Inconsistent(format!(
                    "pinned file {} is not a file name in the image directory",
                    p.display()
                )));
            }
        }
        if !self.pinned.contains(&self.disk) {
            return Err(ModelError::Inconsistent(format!("the disk {} is not pinned", self.disk.display())));
        }
        Ok(())
    }

    fn render(&self, s: &mut String) -> Result<(), ModelError> {
        self.check()?;
        let build = quote(OsStr::new(&self.build))?;
        let disk = quote(self.disk.as_os_str())?;
        s.push_str("state=${VMKIT_STATE:-\"$PWD.state\"}\n");
        s.push_str(&format!("build={build}\n"));
        s.push_str("if [ ! -d \"$state\" ]; then\n");
        s.push_str("  new=\"$state.new-$$\"\n");
        s.push_str("  trap 'rm -rf \"$new\"' EXIT\n");
        s.push_str("  mkdir -m 700 \"$new\"\n");
        s.push_str("  mkdir \"$new/$build\"\n");
        s.push_str("  for f in");
        for p in &self.pinned {
            s.push(' ');
            s.push_str(&quote(p.as_os_str())?);
        }
        s.push_str("; do\n");
        s.push_str("    ln -- \"$f\" \"$new/$build/$f\" 2>/dev/null || cp -- \"$f\" \"$new/$build/$f\"\n");
        s.push_str("  done\n");
        if !self.copied.is_empty() {
            s.push_str("  for f in");
            for p in &self.copied {
                s.push(' ');
                s.push_str(&quote(p.as_os_str())?);
            }
            s.push_str("; do cp -R -- \"$f\" \"$new/$build/$f\"; done\n");
        }
        s.push_str(&format!("  qemu-img create -q -f qcow2 -F qcow2 -b \"$build\"/{disk} \"$new/disk.qcow2\"\n"));
        s.push_str("  echo \"$build\" >\"$new/build\"\n");
        s.push_str("  mv -T -- \"$new\" \"$state\"\n");
        s.push_str("  trap - EXIT\n");
        s.push_str(
            "  echo \"vmkit: this VM's changes are kept in $state; rebuilding the image never touches them\" >&2\n",
        );
        s.push_str("fi\n");
        s.push_str("current=$(cat \"$state/build\")\n");
        s.push_str("if [ \"$current\" != \"$build\" ]; then\n");
        s.push_str("  echo \"vmkit: $state was made from an earlier build of this image and keeps booting it;\" \\\n");
        s.push_str("    \"to start over from this build: rm -r '$state'\" >&2\n");
        s.push_str("fi\n");
        s.push_str("cd \"$state/$current\"\n");
        Ok(())
    }
}

/// One argument of a program a run script starts before QEMU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptArg {
    /// Passed as is.
    Word(std::ffi::OsString),
    /// `prefix` followed by the absolute form of `path`, relative to the script's directory: for programs that
    /// change their working directory (a daemon `chdir`s to `/`). Renders as `'prefix'"$PWD"/'path'`; needs
    /// [`RunScript::cd_to_script_dir`].
    InScriptDir {
        /// Text before the path (`dir=`).
        prefix: String,
        /// The path relative to the script.
        path: std::path::PathBuf,
    },
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
        if let Some(state) = &self.state {
            if !self.cd_to_script_dir {
                return Err(ModelError::Inconsistent("a VM state directory needs cd_to_script_dir".to_owned()));
            }
            state.render(&mut s)?;
        }
        for argv in &self.before {
            for (i, arg) in argv.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                match arg {
                    ScriptArg::Word(w) if i == 0 => s.push_str(&quote_program(w)?),
                    ScriptArg::Word(w) => s.push_str(&quote(w)?),
                    ScriptArg::InScriptDir { prefix, path } => {
                        if !self.cd_to_script_dir {
                            return Err(ModelError::Inconsistent(
                                "a path relative to the script needs cd_to_script_dir".to_owned(),
                            ));
                        }
                        if !prefix.is_empty() {
                            s.push_str(&quote(std::ffi::OsStr::new(prefix))?);
                        }
                        s.push_str("\"$PWD\"/");
                        s.push_str(&quote(path.as_os_str())?);
                    }
                }
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
    Ok(sh_quote(text))
}

/// Quotes a word for a POSIX shell: bare if it is made only of characters no shell treats specially, else in
/// single quotes (a `'` inside becomes `'\''`). vmkit's one shell quoter: run scripts, desktop launchers, the
/// commands an image build sends over SSH.
pub fn sh_quote(text: &str) -> String {
    quote_str(text, true)
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
    fn helpers_run_first_with_paths_anchored_to_the_script() {
        let mut tpm = crate::SwtpmCommand::new("tpm", "tpm/swtpm.sock");
        tpm.daemon = true;
        let script = RunScript { cd_to_script_dir: true, before: vec![tpm.script_argv()], ..Default::default() };
        let text = script.render(&crate::QemuCommand::new(crate::Accel::Tcg)).unwrap();
        let swtpm = "swtpm socket --tpm2 --tpmstate dir=\"$PWD\"/tpm --ctrl type=unixio,path=\"$PWD\"/tpm/swtpm.sock --daemon\n";
        let at = text.find(swtpm).unwrap_or_else(|| panic!("{text}"));
        assert!(at > text.find("cd \"$(dirname").unwrap() && at < text.find("exec ").unwrap(), "{text}");
        let lone = RunScript { before: vec![tpm.script_argv()], ..Default::default() };
        assert!(lone.render(&crate::QemuCommand::new(crate::Accel::Tcg)).is_err(), "relative paths need the cd");
    }

    #[test]
    fn non_utf8_is_an_error() {
        use std::os::unix::ffi::OsStrExt;
        assert!(matches!(quote(OsStr::from_bytes(b"\xff")), Err(ModelError::NotUtf8 { .. })));
    }
}
