//! A parsed config document where every key and value remembers where it came from.
//!
//! The config is read from TOML (what people write) or JSON (what a Nix module hands over with `builtins.toJSON`).
//! Both are first turned into this one tree of spanned nodes, and the config model is then read from the tree by
//! hand rather than through serde: that way every mistake — an unknown key, a wrong type, a value that fails
//! validation, a conflict between two options — is reported at the exact key or value, and all mistakes are
//! collected instead of stopping at the first.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use crate::{Diagnostic, Severity, SourceText};

/// A value and the byte range it occupies in the source.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Byte range in the source text.
    pub span: Range<usize>,
    /// The value.
    pub value: Value,
}

/// A key of a table with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key as written (unquoted).
    pub key: String,
    /// Where the key is.
    pub key_span: Range<usize>,
    /// Its value.
    pub node: Node,
}

/// The kinds of values a config can hold.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// true / false.
    Bool(bool),
    /// A TOML date/time (never valid in this config, kept to say so).
    Datetime(String),
    /// JSON `null`: treated as "not set", which is how Nix hands over unset nullable options.
    Null,
    /// A list.
    Array(Vec<Node>),
    /// A table / object, in source order.
    Table(Vec<Entry>),
}

impl Value {
    /// The name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Bool(_) => "a boolean",
            Value::Datetime(_) => "a date",
            Value::Null => "null",
            Value::Array(_) => "a list",
            Value::Table(_) => "a table",
        }
    }
}

/// Which syntax a config file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML, the format people write.
    Toml,
    /// JSON, the format a Nix module produces.
    Json,
}

impl Format {
    /// `.json` files are JSON, everything else TOML.
    pub fn from_path(path: &std::path::Path) -> Self {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Toml,
        }
    }
}

/// Parses `src` into a node tree, or returns the syntax error as a diagnostic.
pub fn parse(src: &SourceText, format: Format) -> Result<Node, Diagnostic> {
    match format {
        Format::Toml => parse_toml(src),
        Format::Json => crate::json::parse(src.text()).map_err(|e| src.diagnostic(Severity::Error, &e.span, e.message)),
    }
}

fn parse_toml(src: &SourceText) -> Result<Node, Diagnostic> {
    let table = DeTable::parse(src.text()).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        src.diagnostic(Severity::Error, &span, format!("TOML syntax: {}", e.message().trim()))
    })?;
    let span = table.span();
    let mut errors = Vec::new();
    let value = convert_table(table.get_ref(), &mut errors);
    if let Some((span, message)) = errors.into_iter().next() {
        return Err(src.diagnostic(Severity::Error, &span, message));
    }
    Ok(Node { span, value })
}

fn convert_table(table: &DeTable<'_>, errors: &mut Vec<(Range<usize>, String)>) -> Value {
    let mut entries: Vec<Entry> = table
        .iter()
        .map(|(k, v)| Entry {
            key: k.get_ref().to_string(),
            key_span: k.span(),
            node: Node { span: v.span(), value: convert_value(v.get_ref(), v.span(), errors) },
        })
        .collect();
    // The TOML parser keeps tables sorted by key; source order reads better in messages and output.
    entries.sort_by_key(|e| e.key_span.start);
    Value::Table(entries)
}

fn convert_value(value: &DeValue<'_>, span: Range<usize>, errors: &mut Vec<(Range<usize>, String)>) -> Value {
    match value {
        DeValue::String(s) => Value::Str(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Value::Int(n),
            Err(_) => {
                errors.push((span, format!("integer {} does not fit in 64 bits", i.as_str())));
                Value::Int(0)
            }
        },
        DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
            Ok(x) => Value::Float(x),
            Err(_) => {
                errors.push((span, format!("cannot read number {}", f.as_str())));
                Value::Float(0.0)
            }
        },
        DeValue::Boolean(b) => Value::Bool(*b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| Node { span: v.span(), value: convert_value(v.get_ref(), v.span(), errors) })
                .collect(),
        ),
        DeValue::Table(t) => convert_table(t, errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toml(text: &str) -> Node {
        match parse(&SourceText::new("t.toml", text), Format::Toml) {
            Ok(n) => n,
            Err(d) => panic!("{d}"),
        }
    }

    #[test]
    fn toml_keys_and_values_keep_their_spans() {
        let text = "profile = \"always-on\"\n[vms.win]\nmemory = \"16G\"\n";
        let node = toml(text);
        let Value::Table(entries) = &node.value else { panic!("not a table") };
        assert_eq!(entries[0].key, "profile");
        assert_eq!(&text[entries[0].node.span.clone()], "\"always-on\"");
        let Value::Table(vms) = &entries[1].node.value else { panic!("vms not a table") };
        let Value::Table(win) = &vms[0].node.value else { panic!("win not a table") };
        assert_eq!(&text[win[0].key_span.clone()], "memory");
        assert_eq!(&text[win[0].node.span.clone()], "\"16G\"");
    }

    #[test]
    fn toml_syntax_errors_have_a_position() {
        let src = SourceText::new("t.toml", "a = 1\nb = = 2\n");
        let Err(d) = parse(&src, Format::Toml) else { panic!("accepted") };
        assert_eq!(d.line, 2);
        assert!(d.message.starts_with("TOML syntax"), "{}", d.message);
    }

    #[test]
    fn toml_integers_in_other_radixes() {
        let node = toml("a = 0x10\nb = 1_000\n");
        let Value::Table(e) = node.value else { panic!() };
        assert_eq!(e[0].node.value, Value::Int(16));
        assert_eq!(e[1].node.value, Value::Int(1000));
    }
}
