//! Reading a typed model out of a [`doc`](crate::doc) tree while collecting every mistake.
//!
//! A loader walks the tree by hand with a [`Checker`]: each reader (`bool`, `string`, `uint`, `choice`, …) either
//! returns the value or records an error at the offending value and returns `None`, so the walk goes on and the
//! user sees all mistakes at once. [`Checker::fields`] reports keys the table does not know, with the likely
//! intended key as a suggestion. Paths in messages are dotted (`vms.win.memory`, `source.windows.edition`).

use std::ops::Range;
use std::str::FromStr;

use crate::doc::{Entry, Node, Value};
use crate::{Diagnostic, Rejected, Severity, SourceText};

/// Collects diagnostics about one source text.
#[derive(Debug)]
pub struct Checker<'s> {
    src: &'s SourceText,
    noun: &'static str,
    diags: Vec<Diagnostic>,
}

/// The entries of one table, looked up by key.
#[derive(Debug, Clone)]
pub struct Fields<'n> {
    path: String,
    entries: &'n [Entry],
}

impl<'n> Fields<'n> {
    /// The fields of a table that was already checked with [`Checker::fields`] (no diagnostics; a non-table
    /// has no fields).
    pub fn of(node: &'n Node, path: impl Into<String>) -> Self {
        let entries = match &node.value {
            Value::Table(e) => e.as_slice(),
            _ => &[],
        };
        Fields { path: path.into(), entries }
    }

    /// The entry for `key`, unless absent or `null` (which is how Nix hands over an unset option).
    pub fn get(&self, key: &str) -> Option<&'n Entry> {
        self.entries.iter().find(|e| e.key == key && e.node.value != Value::Null)
    }

    /// The node for `key`, unless absent or `null`.
    pub fn node(&self, key: &str) -> Option<&'n Node> {
        self.get(key).map(|e| &e.node)
    }

    /// The dotted path of `key` in this table.
    pub fn path(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The table's own dotted path (empty at the top).
    pub fn table_path(&self) -> &str {
        &self.path
    }

    /// All entries, in source order.
    pub fn entries(&self) -> &'n [Entry] {
        self.entries
    }
}

/// `path.key`, or `key` at the top.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "the file" } else { path }
}

impl<'s> Checker<'s> {
    /// A checker for `src`; unknown keys are called "unknown key".
    pub fn new(src: &'s SourceText) -> Self {
        Self { src, noun: "key", diags: Vec::new() }
    }

    /// Calls keys `noun` in messages ("unknown option `x`" where keys are a module's options).
    #[must_use]
    pub fn calling_keys(mut self, noun: &'static str) -> Self {
        self.noun = noun;
        self
    }

    /// The source being checked.
    pub fn src(&self) -> &'s SourceText {
        self.src
    }

    /// Records an error at `span`.
    pub fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.diags.push(self.src.diagnostic(Severity::Error, span, message));
    }

    /// Records an error at `span` with a suggestion.
    pub fn error_suggesting(&mut self, span: &Range<usize>, message: impl Into<String>, meant: Option<&str>) {
        self.diags.push(self.src.diagnostic(Severity::Error, span, message).suggesting(meant));
    }

    /// Records a warning at `span`.
    pub fn warn(&mut self, span: &Range<usize>, message: impl Into<String>) {
        self.diags.push(self.src.diagnostic(Severity::Warning, span, message));
    }

    /// Whether an error has been recorded so far.
    pub fn has_errors(&self) -> bool {
        self.diags.iter().any(|d| d.severity == Severity::Error)
    }

    /// Ends the check: the warnings if there is no error, else every diagnostic (in file order).
    pub fn finish(self) -> Result<Vec<Diagnostic>, Rejected> {
        crate::conclude(self.diags)
    }

    /// The fields of a table, reporting keys not in `known` (suggesting the likely one, or listing them); a
    /// non-table is an error and gives no fields.
    pub fn fields<'n>(&mut self, node: &'n Node, path: &str, known: &[&str]) -> Fields<'n> {
        let Value::Table(entries) = &node.value else {
            self.error(
                &node.span,
                format!("{}: expected a table, found {}", display_path(path), node.value.type_name()),
            );
            return Fields { path: path.to_owned(), entries: &[] };
        };
        for e in entries {
            if !known.contains(&e.key.as_str()) {
                let noun = self.noun;
                let meant = crate::suggest(&e.key, known.iter().copied());
                let mut message = format!("unknown {noun} `{}`", join(path, &e.key));
                if meant.is_none() {
                    let list: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
                    message.push_str(&format!("; known {noun}s here: {}", list.join(", ")));
                }
                self.error_suggesting(&e.key_span, message, meant);
            }
        }
        Fields { path: path.to_owned(), entries }
    }

    /// A required key: its node, or an error at the table (`at`) saying it is missing.
    pub fn required<'n>(&mut self, f: &Fields<'n>, key: &str, at: &Range<usize>) -> Option<&'n Node> {
        let node = f.node(key);
        if node.is_none() {
            self.error(at, format!("{}: missing `{key}`", display_path(f.table_path())));
        }
        node
    }

    /// "`path`: expected …, found …" at the node.
    pub fn type_error(&mut self, path: &str, node: &Node, expected: &str) {
        self.error(&node.span, format!("{path}: expected {expected}, found {}", node.value.type_name()));
    }

    /// A boolean.
    pub fn bool(&mut self, f: &Fields<'_>, key: &str) -> Option<bool> {
        let e = f.get(key)?;
        match e.node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.type_error(&f.path(key), &e.node, "true or false");
                None
            }
        }
    }

    /// A one-line string: no control characters at all (they would break the XML, the host files and the scripts
    /// the value lands in, or add lines to them).
    pub fn node_str<'n>(&mut self, path: &str, node: &'n Node) -> Option<&'n str> {
        self.node_text(path, node, false)
    }

    /// A string; `multi_line` allows line breaks and tabs (file contents, XML text), never other control
    /// characters.
    pub fn node_text<'n>(&mut self, path: &str, node: &'n Node, multi_line: bool) -> Option<&'n str> {
        match &node.value {
            Value::Str(s) => {
                let bad = s.chars().find(|c| c.is_control() && !(multi_line && matches!(c, '\n' | '\r' | '\t')));
                if let Some(c) = bad {
                    self.error(&node.span, format!("{path}: the control character {c:?} is not allowed in this value"));
                    return None;
                }
                Some(s)
            }
            _ => {
                self.type_error(path, node, "a string");
                None
            }
        }
    }

    /// A one-line string at `key`.
    pub fn string(&mut self, f: &Fields<'_>, key: &str) -> Option<String> {
        let e = f.get(key)?;
        self.node_str(&f.path(key), &e.node).map(str::to_owned)
    }

    /// An integer node within `min..=max`.
    pub fn node_int(&mut self, path: &str, node: &Node, min: i64, max: i64) -> Option<i64> {
        match node.value {
            Value::Int(n) if (min..=max).contains(&n) => Some(n),
            Value::Int(n) => {
                self.error(&node.span, format!("{path}: {n} is out of range ({min} to {max})"));
                None
            }
            _ => {
                self.type_error(path, node, "an integer");
                None
            }
        }
    }

    /// A non-negative integer at `key` within `min..=max`.
    pub fn uint(&mut self, f: &Fields<'_>, key: &str, min: u64, max: u64) -> Option<u64> {
        let e = f.get(key)?;
        let lo = i64::try_from(min).unwrap_or(i64::MAX);
        let hi = i64::try_from(max).unwrap_or(i64::MAX);
        self.node_int(&f.path(key), &e.node, lo, hi).map(i64::unsigned_abs)
    }

    /// A string node parsed with `FromStr` (whose error is the message).
    pub fn node_parsed<T: FromStr<Err = String>>(&mut self, path: &str, node: &Node) -> Option<T> {
        let s = self.node_str(path, node)?;
        match s.parse() {
            Ok(v) => Some(v),
            Err(msg) => {
                self.error(&node.span, format!("{path}: {msg}"));
                None
            }
        }
    }

    /// A string at `key` parsed with `FromStr`, with the value's span.
    pub fn parsed<T: FromStr<Err = String>>(&mut self, f: &Fields<'_>, key: &str) -> Option<(T, Range<usize>)> {
        let e = f.get(key)?;
        self.node_parsed(&f.path(key), &e.node).map(|v| (v, e.node.span.clone()))
    }

    /// One of a fixed set of strings at `key`.
    pub fn choice<T: Copy>(&mut self, f: &Fields<'_>, key: &str, options: &[(&str, T)]) -> Option<T> {
        let e = f.get(key)?;
        let path = f.path(key);
        let s = self.node_str(&path, &e.node)?;
        if let Some((_, v)) = options.iter().find(|(name, _)| *name == s) {
            return Some(*v);
        }
        let names: Vec<String> = options.iter().map(|(n, _)| format!("\"{n}\"")).collect();
        let meant = crate::suggest(s, options.iter().map(|(n, _)| *n));
        self.error_suggesting(&e.node.span, format!("{path}: \"{s}\" is not one of {}", names.join(", ")), meant);
        None
    }

    /// A list at `key` (empty when absent or not a list; the latter is an error).
    pub fn list<'n>(&mut self, f: &Fields<'n>, key: &str) -> &'n [Node] {
        let Some(e) = f.get(key) else { return &[] };
        match &e.node.value {
            Value::Array(items) => items,
            _ => {
                self.type_error(&f.path(key), &e.node, "a list");
                &[]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doc::{Format, parse};

    #[test]
    fn every_mistake_is_collected_with_its_position() {
        let src = SourceText::new("t.toml", "nmae = \"x\"\ncount = \"3\"\nsize = 99\nkind = \"smal\"\n");
        let root = parse(&src, Format::Toml).unwrap_or_else(|d| panic!("{d}"));
        let mut c = Checker::new(&src);
        let f = c.fields(&root, "", &["name", "count", "size", "kind"]);
        assert_eq!(c.required(&f, "name", &root.span), None);
        assert_eq!(c.uint(&f, "count", 0, 10), None);
        assert_eq!(c.uint(&f, "size", 0, 10), None);
        assert_eq!(c.choice(&f, "kind", &[("small", 1), ("large", 2)]), None);
        let Err(rejected) = c.finish() else { panic!("accepted") };
        let lines = rejected.lines();
        assert_eq!(
            lines,
            [
                "t.toml:1:1: error: unknown key `nmae`; did you mean `name`?",
                "t.toml:1:1: error: the file: missing `name`",
                "t.toml:2:9: error: count: expected an integer, found a string",
                "t.toml:3:8: error: size: 99 is out of range (0 to 10)",
                "t.toml:4:8: error: kind: \"smal\" is not one of \"small\", \"large\"; did you mean `small`?",
            ]
        );
    }
}
