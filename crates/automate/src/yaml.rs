//! A YAML document as a tree of nodes that remember where they were written.
//!
//! Scripts are not deserialised straight into the typed model with `#[derive(Deserialize)]`: serde stops at the
//! first problem, and untagged enums (a `click` that is either a string or a mapping) turn every mistake into
//! "data did not match any variant". Instead serde-saphyr parses the document into this small tree, every node
//! carrying its line and column, and [`crate::load`] walks it by hand: it reports *every* problem of a file, each
//! with its position and what was expected there.
//!
//! Two parser choices keep the original's scripts loading as their authors meant them:
//! - YAML 1.2 booleans only (`true`/`false`): `key: y` or `key: yes` stay the strings they look like.
//! - A plain scalar that looks like a number keeps its source text where a string is expected
//!   (`type: 007` types `007`), the way a typed `String` field would take it.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{MessageFormatter, Spanned};

/// A position in a source file: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    /// 1-based line.
    pub line: u64,
    /// 1-based column, counted in characters.
    pub column: u64,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A parsed YAML node with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub kind: Kind,
    pub pos: Pos,
    /// For plain scalars that were resolved to a number or boolean: the text as written.
    pub raw: Option<String>,
}

/// What a node holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// A short description of what the node is, for "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Null => "nothing (null)".to_owned(),
            Kind::Bool(b) => format!("the boolean {b}"),
            Kind::Int(i) => format!("the number {i}"),
            Kind::Float(x) => format!("the number {x}"),
            Kind::Str(s) => format!("the string {}", quote(s)),
            Kind::Seq(_) => "a list".to_owned(),
            Kind::Map(_) => "a mapping".to_owned(),
        }
    }

    /// The text of a scalar as a string target would take it: strings as they are, plain numbers and booleans
    /// as written in the source. `None` for null, lists and mappings.
    pub fn as_text(&self) -> Option<String> {
        match &self.kind {
            Kind::Str(s) => Some(s.clone()),
            Kind::Bool(_) | Kind::Int(_) | Kind::Float(_) => {
                Some(self.raw.clone().unwrap_or_else(|| match &self.kind {
                    Kind::Bool(b) => b.to_string(),
                    Kind::Int(i) => i.to_string(),
                    Kind::Float(x) => x.to_string(),
                    _ => String::new(),
                }))
            }
            Kind::Null | Kind::Seq(_) | Kind::Map(_) => None,
        }
    }
}

/// A string in double quotes with control characters escaped, for messages.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 60;
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out.push('"');
    out
}

/// Why a document could not be parsed as YAML at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Parses one YAML document into a [`Node`] tree.
pub(crate) fn parse(source: &str) -> Result<Node, SyntaxError> {
    let options = serde_saphyr::options! {
        strict_booleans: true,
        with_snippet: false,
    };
    match serde_saphyr::from_str_with_options::<Spanned<RawNode>>(source, options) {
        Ok(root) => Ok(convert(root, source)),
        Err(err) => {
            let plain = err.without_snippet();
            let pos = err
                .location()
                .map(|l| Pos { line: l.line(), column: l.column() })
                .unwrap_or(Pos { line: 1, column: 1 });
            let message = match plain {
                serde_saphyr::Error::UnknownAnchor { .. } => {
                    let name = alias_name_at(source, pos).unwrap_or_default();
                    format!("alias `*{name}` refers to no anchor `&{name}` defined before it")
                }
                other => serde_saphyr::UserMessageFormatter.format_message(other).into_owned(),
            };
            Err(SyntaxError { pos, message: format!("invalid YAML: {message}") })
        }
    }
}

/// The name of the alias (`*name`) written at `pos`, for the unknown-anchor message.
fn alias_name_at(source: &str, pos: Pos) -> Option<String> {
    let line = source.lines().nth(usize::try_from(pos.line).ok()?.checked_sub(1)?)?;
    let rest: String = line.chars().skip(usize::try_from(pos.column).ok()?.checked_sub(1)?).collect();
    let name: String = rest
        .trim_start_matches('*')
        .chars()
        .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | '[' | ']' | '{' | '}'))
        .collect();
    (!name.is_empty()).then_some(name)
}

/// What serde-saphyr hands over; converted to [`Node`] once the whole document is read.
#[derive(Debug)]
enum RawNode {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<RawNode>>),
    Map(Vec<(Spanned<RawNode>, Spanned<RawNode>)>),
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = RawNode;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_none<E>(self) -> Result<RawNode, E> {
        Ok(RawNode::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawNode, D::Error> {
        RawNode::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<RawNode, E> {
        Ok(RawNode::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<RawNode, E> {
        Ok(RawNode::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<RawNode, E> {
        Ok(RawNode::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<RawNode, E> {
        Ok(RawNode::Int(v))
    }
    fn visit_u128<E>(self, v: u128) -> Result<RawNode, E> {
        // Beyond i128 only as a float; any such value is out of range for every field anyway.
        Ok(i128::try_from(v).map_or(RawNode::Float(v as f64), RawNode::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<RawNode, E> {
        Ok(RawNode::Float(v))
    }
    fn visit_char<E>(self, v: char) -> Result<RawNode, E> {
        Ok(RawNode::Str(v.to_string()))
    }
    fn visit_str<E>(self, v: &str) -> Result<RawNode, E> {
        Ok(RawNode::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<RawNode, E> {
        Ok(RawNode::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<RawNode, E> {
        Ok(RawNode::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawNode, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(RawNode::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawNode, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry()? {
            entries.push(entry);
        }
        Ok(RawNode::Map(entries))
    }
}

fn convert(node: Spanned<RawNode>, source: &str) -> Node {
    let loc = node.referenced;
    let pos = Pos { line: loc.line(), column: loc.column() };
    let raw = || source_text(source, &node.defined);
    let (kind, raw) = match node.value {
        RawNode::Null => (Kind::Null, None),
        RawNode::Bool(b) => (Kind::Bool(b), raw()),
        RawNode::Int(i) => (Kind::Int(i), raw()),
        RawNode::Float(x) => (Kind::Float(x), raw()),
        RawNode::Str(s) => (Kind::Str(s), None),
        RawNode::Seq(items) => (Kind::Seq(items.into_iter().map(|n| convert(n, source)).collect()), None),
        RawNode::Map(entries) => {
            (Kind::Map(entries.into_iter().map(|(k, v)| (convert(k, source), convert(v, source))).collect()), None)
        }
    };
    Node { kind, pos, raw }
}

/// The source text a location covers, when the parser recorded byte offsets for it.
fn source_text(source: &str, loc: &serde_saphyr::Location) -> Option<String> {
    let span = loc.span();
    let start = usize::try_from(span.byte_offset()?).ok()?;
    let len = usize::try_from(span.byte_len()?).ok()?;
    let text = source.get(start..start.checked_add(len)?)?;
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map_value<'a>(node: &'a Node, key: &str) -> &'a Node {
        let Kind::Map(entries) = &node.kind else { panic!("not a map: {node:?}") };
        &entries.iter().find(|(k, _)| k.as_text().as_deref() == Some(key)).expect("key present").1
    }

    #[test]
    fn positions_are_one_based() {
        let root = parse("a: 1\nb:\n  - x\n").expect("parses");
        assert_eq!(root.pos, Pos { line: 1, column: 1 });
        let b = map_value(&root, "b");
        let Kind::Seq(items) = &b.kind else { panic!("not a seq") };
        assert_eq!(items[0].pos, Pos { line: 3, column: 5 });
    }

    #[test]
    fn plain_scalars_keep_their_text_where_a_string_is_wanted() {
        let root = parse("a: 007\nb: y\nc: yes\nd: 1.50\ne: true\n").expect("parses");
        assert_eq!(map_value(&root, "a").as_text().as_deref(), Some("007"));
        assert_eq!(map_value(&root, "b").kind, Kind::Str("y".into()));
        assert_eq!(map_value(&root, "c").kind, Kind::Str("yes".into()));
        assert_eq!(map_value(&root, "d").as_text().as_deref(), Some("1.50"));
        assert_eq!(map_value(&root, "e").kind, Kind::Bool(true));
    }

    #[test]
    fn syntax_errors_carry_position_and_a_plain_message() {
        let err = parse("a: [1, 2\nb: 3\n").expect_err("unclosed flow sequence");
        assert_eq!(err.pos.line, 2);
        assert!(!err.message.contains("line"), "{}", err.message);
    }

    #[test]
    fn aliases_resolve() {
        let root = parse("a: &x hello\nb: *x\n").expect("parses");
        assert_eq!(map_value(&root, "b").kind, Kind::Str("hello".into()));
    }
}
