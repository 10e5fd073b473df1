//! The corpus of broken scripts under `tests/broken/`: each must be rejected with exactly the problems its
//! `# expect: LINE:COL: MESSAGE` comments list (message compared as a prefix, so a message may grow a hint
//! without every expectation being rewritten), in file order.

use std::path::Path;

#[test]
fn every_broken_script_is_rejected_at_the_right_place() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("corpus dir").map(|e| e.expect("entry").path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    files.sort();
    assert!(files.len() >= 20, "the corpus has {} scripts, fewer than 20", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        let expected: Vec<(usize, usize, String)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .map(|e| {
                let mut parts = e.splitn(3, ':');
                let line = parts.next().and_then(|p| p.trim().parse().ok()).expect("line");
                let col = parts.next().and_then(|p| p.trim().parse().ok()).expect("column");
                (line, col, parts.next().expect("message").trim().to_owned())
            })
            .collect();
        assert!(!expected.is_empty(), "{} has no `# expect:` line", file.display());
        let diagnostics = match automate::load_file(file) {
            Ok(_) => {
                failures.push(format!("{}: loaded, but should have been rejected", file.display()));
                continue;
            }
            Err(automate::ScriptError::Invalid { diagnostics }) => diagnostics,
            Err(other) => panic!("{}: {other}", file.display()),
        };
        let got: Vec<String> = diagnostics
            .iter()
            .map(|d| match &d.suggestion {
                Some(s) => format!("{}:{}: {} (did you mean `{s}`?)", d.line, d.col, d.message),
                None => format!("{}:{}: {}", d.line, d.col, d.message),
            })
            .collect();
        // An expectation ending in "(did you mean `x`?)" asks for that suggestion; the rest starts the message.
        let matches = got.len() == expected.len()
            && diagnostics.iter().zip(&expected).all(|(d, (line, col, message))| {
                let (start, meant) = match message.rsplit_once(" (did you mean `") {
                    Some((start, rest)) => (start, rest.strip_suffix("`?)")),
                    None => (message.as_str(), None),
                };
                let suggested = d.message.starts_with(start) && (meant.is_none() || d.suggestion.as_deref() == meant);
                d.line == *line && d.col == *col && (suggested || d.message.starts_with(message.as_str()))
            });
        if !matches {
            let want: Vec<String> = expected.iter().map(|(l, c, m)| format!("{l}:{c}: {m}")).collect();
            failures.push(format!("{}:\n  want {want:#?}\n  got  {got:#?}", file.display()));
        }
        for d in &diagnostics {
            assert_eq!(d.file, file.display().to_string(), "diagnostics name their file");
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
