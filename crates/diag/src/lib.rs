//! Diagnostics for the files users write: `FILE:LINE:COL: error: message; did you mean `x`?`.
//!
//! vmkit reads three kinds of hand-written files — automation scripts (YAML), desktop-VM configs (TOML or JSON)
//! and image recipes (TOML) — and all three answer a mistake the same way: every problem is collected (not just
//! the first), each is located at the offending key or value, has a severity, and may carry a suggestion (the key
//! that was probably meant). This crate is that one shape, so the three loaders report alike and a tool reading
//! `--json` output sees one format.
//!
//! Positions are byte offsets while a file is checked ([`SourceText`] turns them into 1-based line and column,
//! counted in characters as editors do) or come straight from a parser that already counts lines (the YAML
//! reader). [`doc`] is a spanned tree for TOML and JSON and [`check`] the typed readers over it that collect
//! diagnostics instead of stopping at the first.

use std::fmt;
use std::ops::Range;

pub mod check;
pub mod doc;
pub mod json;

pub use check::{Checker, Fields};

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The file is rejected.
    Error,
    /// The file is accepted, but probably not what the user meant.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding about a file, located in it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file name as given by the user.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// What is wrong, and what would be right.
    pub message: String,
    /// What was probably meant (a key or value to write instead), when there is a likely candidate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

impl Diagnostic {
    /// An error at a line and column.
    pub fn error(file: impl Into<String>, line: usize, col: usize, message: impl Into<String>) -> Self {
        Self { severity: Severity::Error, file: file.into(), line, col, message: message.into(), suggestion: None }
    }

    /// The same diagnostic, suggesting `meant` instead of what was written.
    #[must_use]
    pub fn suggesting(mut self, meant: Option<&str>) -> Self {
        self.suggestion = meant.map(str::to_owned);
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}: {}", self.file, self.line, self.col, self.severity.as_str(), self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, "; did you mean `{s}`?")?;
        }
        Ok(())
    }
}

/// A text with its name, able to turn byte offsets into line and column.
#[derive(Debug, Clone)]
pub struct SourceText {
    name: String,
    text: String,
    line_starts: Vec<usize>,
}

impl SourceText {
    /// Wraps `text`, read from the file called `name`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { name: name.into(), text, line_starts }
    }

    /// The file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// 1-based (line, column) of a byte offset; offsets past the end point at the end.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let col = self.text.get(start..offset).map_or(offset - start, |s| s.chars().count());
        (line + 1, col + 1)
    }

    /// A diagnostic at the start of `span`.
    pub fn diagnostic(&self, severity: Severity, span: &Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, col) = self.line_col(span.start);
        Diagnostic { severity, file: self.name.clone(), line, col, message: message.into(), suggestion: None }
    }
}

/// A file was rejected: every error found (and the warnings seen on the way), in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.0))]
pub struct Rejected(pub Vec<Diagnostic>);

impl Rejected {
    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.severity == Severity::Error)
    }

    /// Every diagnostic, one per line.
    pub fn lines(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

fn render(diags: &[Diagnostic]) -> String {
    let errors = diags.iter().filter(|d| d.severity == Severity::Error).count();
    let file = diags.first().map_or("the file", |d| d.file.as_str());
    let mut out = format!("{file} has {errors} error{}:", if errors == 1 { "" } else { "s" });
    for d in diags {
        out.push_str("\n  ");
        out.push_str(&d.to_string());
    }
    out
}

/// Sorts diagnostics into file order and splits them: `Err` if any is an error, else the warnings.
pub fn conclude(mut diags: Vec<Diagnostic>) -> Result<Vec<Diagnostic>, Rejected> {
    diags.sort_by_key(|d| (d.line, d.col, d.severity));
    if diags.iter().any(|d| d.severity == Severity::Error) { Err(Rejected(diags)) } else { Ok(diags) }
}

/// The candidate closest to `word`, if it is close enough to be a likely typo.
///
/// Case, `_` and `-` are ignored (`cpu_pinning` means `cpuPinning`), and swapping two neighbouring characters
/// counts as one edit (optimal string alignment: `wiat` is one typo from `wait`). A third of the word's length,
/// between one and three edits, is close enough; words shorter than three characters get no suggestion (`4M` is
/// not a typo of `2M`).
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let norm = |s: &str| s.chars().filter(|c| *c != '_' && *c != '-').flat_map(char::to_lowercase).collect::<String>();
    let word = norm(word);
    if word.chars().count() < 3 {
        return None;
    }
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(&word, &norm(c)), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based_and_count_characters() {
        let src = SourceText::new("f.toml", "a = 1\nnäme = \"x\"\n");
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(4), (1, 5));
        assert_eq!(src.line_col(6), (2, 1));
        // "näme" has a two-byte character: the '=' is byte 12 but column 6.
        let eq = src.text().find("= \"x").unwrap_or(0);
        assert_eq!(src.line_col(eq), (2, 6));
        assert_eq!(src.line_col(10_000), (3, 1));
    }

    #[test]
    fn suggestions_forgive_case_separators_and_swaps() {
        let keys = ["text", "timeout", "cpuPinning", "wait", "click", "profile"];
        assert_eq!(suggest("timout", keys), Some("timeout"));
        assert_eq!(suggest("wiat", keys), Some("wait"));
        assert_eq!(suggest("cpu_pinning", keys), Some("cpuPinning"));
        assert_eq!(suggest("profil", keys), Some("profile"));
        assert_eq!(suggest("zzzzzz", keys), None);
        assert_eq!(suggest("x", keys), None);
        assert_eq!(suggest("4M", ["2M", "1G"]), None);
    }

    #[test]
    fn a_rejection_renders_every_diagnostic_with_its_suggestion() {
        let src = SourceText::new("r.toml", "a = 1\nnmae = 2\n");
        let mut d = src.diagnostic(Severity::Error, &(6..10), "unknown key `nmae`").suggesting(Some("name"));
        assert_eq!(d.to_string(), "r.toml:2:1: error: unknown key `nmae`; did you mean `name`?");
        d.suggestion = None;
        let warning = src.diagnostic(Severity::Warning, &(0..1), "odd");
        let Err(rejected) = conclude(vec![d, warning]) else { panic!("an error was accepted") };
        assert_eq!(
            rejected.to_string(),
            "r.toml has 1 error:\n  r.toml:1:1: warning: odd\n  r.toml:2:1: error: unknown key `nmae`"
        );
        assert_eq!(rejected.errors().count(), 1);
        assert_eq!(conclude(vec![src.diagnostic(Severity::Warning, &(0..1), "odd")]).map(|w| w.len()), Ok(1));
    }
}
