//! Script variables bound on the command line (`--var NAME=VALUE`, `--var-file NAME=FILE`) by `vmkit automate
//! run` and `replay`: the values reach a real application's fields over VNC, the secret one never reaches stdout,
//! stderr, `--json` or the debug output, and every wrong use is exit 2 with a message naming the variable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

/// The secret variable's value, given in a file (with a trailing newline that is not part of it).
const SECRET: &str = "Var-S3cret!pw";
const FULL_NAME: &str = "Grace Hopper";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vmkit() -> Command {
    Command::cargo_bin("vmkit").expect("vmkit binary")
}

/// `examples/automate/installer.yaml` with its typed values as variables: the full name without a default, the
/// account name with one, the password secret (the steps that type it are not marked secret themselves).
fn script_with_variables(dir: &Path) -> PathBuf {
    let example = std::fs::read_to_string(root().join("examples/automate/installer.yaml")).expect("example");
    let password = r#"{text: 'p@ss W0rd!#$%^&*()_+-={}[]|\:;"''<>,.?/~`', secret: true}"#;
    assert_eq!(example.matches(password).count(), 2, "the example changed: update this test");
    let text = example
        .replace("- type: 'Ada Lovelace'", "- type: '${full_name}'")
        .replace("{text: 'ada', char_delay: 0.02}", "{text: '${account}', char_delay: 0.02}")
        .replace(password, "'${password}'")
        .replace(
            "boot_commands:",
            "variables:\n  full_name:\n  account: {default: ada}\n  password: {secret: true}\n\nboot_commands:",
        );
    let path = dir.join("installer-vars.yaml");
    std::fs::write(&path, text).expect("write");
    path
}

fn output(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.timeout(Duration::from_secs(300)).output().expect("run vmkit");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn variables_from_the_command_line_fill_the_installer_and_the_secret_one_is_never_shown() {
    let display = testbed::Display::xvnc(1280, 800).expect("Xvnc");
    let scratch = testbed::scratch_dir("vars").expect("scratch");
    let script = script_with_variables(scratch.path());
    let secret_file = scratch.path().join("password");
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write");
    let var_file = format!("password={}", secret_file.display());
    let record = scratch.path().join("record.json");
    let mut app = testbed::Installer::start(&display, &record, 2.0).expect("installer app");
    let debug = scratch.path().join("debug");

    let (code, stdout, stderr) = output(
        vmkit()
            .args(["automate", "run", "--json", "--key-delay-ms", "0", "--vnc", &display.vnc_addr(), "--config"])
            .arg(&script)
            .args(["--var", &format!("full_name={FULL_NAME}"), "--var-file", &var_file, "--debug"])
            .arg(&debug),
    );
    assert_eq!(code, Some(0), "{stderr}\napp log:\n{}", app.log());
    assert_eq!(app.wait(Duration::from_secs(20)).expect("app exits"), Some(0), "the two passwords match");
    let rec: serde_json::Value = serde_json::from_str(&app.record().expect("record")).expect("record JSON");
    assert_eq!(rec["account"]["full_name"], FULL_NAME);
    assert_eq!(rec["account"]["account_name"], "ada", "the declared default");
    assert_eq!(rec["account"]["password"], SECRET, "the file's value, without its newline");
    assert_eq!(rec["account"]["verify_password"], SECRET);
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("one JSON object");
    assert_eq!(json["outcome"], "passed");

    // The secret appears nowhere: not in stdout (the JSON), stderr, the log, report.html, the recording's index
    // or a file name.
    let mut everything = vec![("stdout".to_owned(), stdout), ("stderr".to_owned(), stderr)];
    for dir in [debug.clone(), debug.join("frames")] {
        for entry in std::fs::read_dir(&dir).expect("debug dir") {
            let path = entry.expect("entry").path();
            let name = path.file_name().expect("name").to_string_lossy().into_owned();
            everything.push((format!("file name {name}"), name.clone()));
            if [".html", ".log", ".json", ".jsonl"].iter().any(|x| name.ends_with(x)) {
                everything.push((name, std::fs::read_to_string(&path).expect("read")));
            }
        }
    }
    assert!(everything.iter().any(|(what, _)| what == "report.html"), "report.html written");
    assert!(everything.iter().any(|(what, text)| what == "index.jsonl" && text.contains(FULL_NAME)));
    for (what, text) in &everything {
        assert!(!text.contains(SECRET), "{what} contains the secret:\n{text}");
    }

    // Replay binds the same way: the same values pass against the recording; another name is typed text the
    // recording did not send; no value for a variable without a default is bad input.
    let replay = |vars: &[&str]| {
        output(
            vmkit()
                .args(["automate", "replay", "--json", "--config"])
                .arg(&script)
                .arg("--frames")
                .arg(&debug)
                .args(vars),
        )
    };
    let name = format!("full_name={FULL_NAME}");
    let (code, stdout, stderr) = replay(&["--var", &name, "--var-file", &var_file]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    let (code, _, stderr) = replay(&["--var", "full_name=Ada Lovelace", "--var-file", &var_file]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("Ada Lovelace"), "{stderr}");
    let (code, stdout, stderr) = replay(&["--var-file", &var_file]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stdout.is_empty() && stderr.contains("`full_name`, with no default"), "{stderr}");
}

#[test]
fn wrong_variables_are_bad_input_before_anything_connects() {
    let tmp = tempfile::tempdir().expect("tmp");
    let script = script_with_variables(tmp.path());
    let secret_file = tmp.path().join("password");
    std::fs::write(&secret_file, SECRET).expect("write");
    let var_file = format!("password={}", secret_file.display());
    let name = format!("full_name={FULL_NAME}");
    // Nothing listens on the VNC port: a run that got past its variables would fail with exit 1 instead.
    let port = testbed::free_port().expect("port");
    let run = |vars: &[&str]| {
        output(
            vmkit()
                .args(["automate", "run", "--json", "--reconnect-timeout", "1", "--vnc"])
                .arg(format!("127.0.0.1:{port}"))
                .arg("--config")
                .arg(&script)
                .args(vars),
        )
    };
    let file_of = |text: &str| {
        let p = tmp.path().join("value");
        std::fs::write(&p, text).expect("write");
        format!("full_name={}", p.display())
    };
    let control = file_of("Ada\u{1}");
    for (vars, says) in [
        (vec!["--var", "nope=1", "--var", &name, "--var-file", &var_file], "declares no variable `nope`"),
        (vec!["--var", &name, "--var", "full_name=again", "--var-file", &var_file], "given more than once"),
        (vec!["--var", &name, "--var-file", &var_file, "--var-file", &var_file], "given more than once"),
        (vec!["--var", "full_name", "--var-file", &var_file], "expected NAME=VALUE"),
        (vec!["--var", "Full-Name=x", "--var-file", &var_file], "lower-case letters"),
        (vec!["--var", &name], "the script declares `password`, with no default"),
        (vec!["--var", &name, "--var-file", "password=/dev/zero"], "larger than 65536 bytes"),
        (vec!["--var", &name, "--var-file", "password=/nonexistent/pw"], "cannot read /nonexistent/pw"),
        (vec!["--var-file", &control, "--var-file", &var_file], "control character"),
        (vec!["--var", &name, "--var", &format!("password={SECRET}")], "secret variable: give it with --var-file"),
    ] {
        let (code, stdout, stderr) = run(&vars);
        assert_eq!(code, Some(2), "{vars:?}: {stderr}");
        assert!(stderr.contains(says), "{vars:?}: expected {says:?} in:\n{stderr}");
        assert!(stdout.is_empty(), "{vars:?}: {stdout}");
        assert!(!stderr.contains(SECRET), "{vars:?}: the secret was shown:\n{stderr}");
    }
    // With every value right, the run gets as far as the (absent) VNC server.
    let (code, _, stderr) = run(&["--var", &name, "--var-file", &var_file]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("unreachable"), "{stderr}");

    // The alias takes the same flags.
    let out = Command::cargo_bin("yaml-automation-runner")
        .expect("alias binary")
        .arg("--config")
        .arg(&script)
        .args(["--vnc-port", &port.to_string(), "--var", "nope=1"])
        .timeout(Duration::from_secs(60))
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("declares no variable `nope`"));
}
