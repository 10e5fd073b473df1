//! A minimal XML element tree: built by the typed domain model, written with quick-xml, read with roxmltree.
//!
//! Typed models (the domain, storage volumes and pools) turn themselves into [`Element`]s and quick-xml writes
//! them, escaping every attribute and text: no XML is ever glued together from strings. The same tree holds
//! `extraDevices` after they were checked to be well-formed, and gives a canonical form of any XML (attributes
//! sorted, insignificant whitespace and comments dropped) so that the XML libvirt returns can be compared and
//! hashed regardless of formatting.

use std::fmt::Display;

use quick_xml::Writer;
use quick_xml::events::{BytesEnd, BytesStart, BytesText, Event};

/// An XML element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    /// Tag name (may carry a prefix, `vmkit:vm`).
    pub name: String,
    /// Attributes in output order.
    pub attrs: Vec<(String, String)>,
    /// Child elements and text.
    pub children: Vec<Child>,
}

/// A child of an element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Child {
    /// A nested element.
    Element(Element),
    /// Character data.
    Text(String),
}

impl Element {
    /// An element with no attributes or children.
    pub fn new(name: impl Into<String>) -> Self {
        Element { name: name.into(), attrs: Vec::new(), children: Vec::new() }
    }

    /// Adds an attribute.
    #[must_use]
    pub fn attr(mut self, name: &str, value: impl Display) -> Self {
        self.attrs.push((name.to_owned(), value.to_string()));
        self
    }

    /// Adds an attribute when `value` is `Some`.
    #[must_use]
    pub fn attr_opt(self, name: &str, value: Option<impl Display>) -> Self {
        match value {
            Some(v) => self.attr(name, v),
            None => self,
        }
    }

    /// Adds a child element.
    #[must_use]
    pub fn child(mut self, e: Element) -> Self {
        self.children.push(Child::Element(e));
        self
    }

    /// Adds a child element when `e` is `Some`.
    #[must_use]
    pub fn child_opt(self, e: Option<Element>) -> Self {
        match e {
            Some(e) => self.child(e),
            None => self,
        }
    }

    /// Adds child elements.
    #[must_use]
    pub fn children(mut self, es: impl IntoIterator<Item = Element>) -> Self {
        self.children.extend(es.into_iter().map(Child::Element));
        self
    }

    /// Adds text.
    #[must_use]
    pub fn text(mut self, t: impl Display) -> Self {
        self.children.push(Child::Text(t.to_string()));
        self
    }

    /// The value of an attribute.
    pub fn get_attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Child elements.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|c| match c {
            Child::Element(e) => Some(e),
            Child::Text(_) => None,
        })
    }

    /// The first child element called `name`.
    pub fn find(&self, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.name == name)
    }

    /// The concatenated text of this element's direct text children.
    pub fn text_content(&self) -> String {
        self.children
            .iter()
            .filter_map(|c| match c {
                Child::Text(t) => Some(t.as_str()),
                Child::Element(_) => None,
            })
            .collect()
    }
}

/// Writes an element tree as indented XML (two spaces, no declaration, as libvirt writes it).
pub fn render(root: &Element) -> String {
    let mut s = finish(Writer::new_with_indent(Vec::new(), b' ', 2), root);
    s.push('\n');
    s
}

/// Writes an element tree without any formatting whitespace.
pub fn render_compact(root: &Element) -> String {
    finish(Writer::new(Vec::new()), root)
}

/// Rendering cannot fail: the writer writes into a `Vec` (no I/O error) and every name, value and text is a
/// `String` (the output is UTF-8). A failure would be a bug in the XML writer, so it panics with that reason
/// instead of handing out an empty or truncated document.
fn finish(mut w: Writer<Vec<u8>>, root: &Element) -> String {
    #[allow(clippy::expect_used)]
    {
        write_element(&mut w, root).expect("writing XML into a Vec cannot fail");
        String::from_utf8(w.into_inner()).expect("XML written from Strings is UTF-8")
    }
}

fn write_element<W: std::io::Write>(w: &mut Writer<W>, e: &Element) -> std::io::Result<()> {
    let mut start = BytesStart::new(e.name.as_str());
    for (k, v) in &e.attrs {
        start.push_attribute((k.as_str(), v.as_str()));
    }
    if e.children.is_empty() {
        return w.write_event(Event::Empty(start));
    }
    w.write_event(Event::Start(start))?;
    for c in &e.children {
        match c {
            Child::Element(child) => write_element(w, child)?,
            Child::Text(t) => w.write_event(Event::Text(BytesText::new(t)))?,
        }
    }
    w.write_event(Event::End(BytesEnd::new(e.name.as_str())))
}

/// Why an XML text was rejected, with the byte offset of the problem in that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XmlError {
    /// Byte offset in the text that was parsed.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

const WRAPPER: &str = "vmkit-fragment";

/// Parses a fragment of zero or more elements (like `extraDevices`): it must be well-formed, hold only elements
/// at the top level (no stray text), and have no DTD.
pub fn parse_fragment(xml: &str) -> Result<Vec<Element>, XmlError> {
    let open = format!("<{WRAPPER}>");
    let wrapped = format!("{open}{xml}</{WRAPPER}>");
    let doc = roxmltree::Document::parse(&wrapped).map_err(|e| {
        let pos = e.pos();
        let offset = offset_of(&wrapped, pos.row, pos.col).saturating_sub(open.len()).min(xml.len());
        // An element left open runs into the wrapper's end tag: say so without naming the wrapper.
        if let roxmltree::Error::UnexpectedCloseTag(expected, actual, _) = &e
            && actual == WRAPPER
        {
            let start = xml.rfind(&format!("<{expected}")).unwrap_or(offset);
            return XmlError { offset: start, message: format!("<{expected}> is never closed") };
        }
        XmlError { offset, message: strip_position(&e.to_string()) }
    })?;
    let root = doc.root_element();
    let mut out = Vec::new();
    for child in root.children() {
        if child.is_element() {
            out.push(convert(child, Some(root)));
        } else if child.is_text() && !child.text().unwrap_or_default().trim().is_empty() {
            let offset = child.range().start.saturating_sub(open.len());
            return Err(XmlError { offset, message: "text outside of an element".into() });
        }
    }
    Ok(out)
}

/// Parses a whole document into an element tree (comments and processing instructions dropped).
pub fn parse_document(xml: &str) -> Result<Element, XmlError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| {
        let pos = e.pos();
        XmlError { offset: offset_of(xml, pos.row, pos.col), message: strip_position(&e.to_string()) }
    })?;
    Ok(convert(doc.root_element(), None))
}

fn offset_of(text: &str, row: u32, col: u32) -> usize {
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if i + 1 == usize::try_from(row).unwrap_or(usize::MAX) {
            let col = usize::try_from(col).unwrap_or(1).saturating_sub(1);
            return offset + line.char_indices().nth(col).map_or(line.len(), |(b, _)| b);
        }
        offset += line.len();
    }
    offset
}

fn strip_position(msg: &str) -> String {
    if let Some((head, tail)) = msg.rsplit_once(" at ")
        && tail.split(':').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return head.to_owned();
    }
    msg.to_owned()
}

fn qualified(node: roxmltree::Node<'_, '_>, uri: Option<&str>, local: &str) -> String {
    match uri.and_then(|u| node.lookup_prefix(u)) {
        Some(prefix) if !prefix.is_empty() => format!("{prefix}:{local}"),
        _ => local.to_owned(),
    }
}

fn convert(node: roxmltree::Node<'_, '_>, parent: Option<roxmltree::Node<'_, '_>>) -> Element {
    let tag = node.tag_name();
    let mut e = Element::new(qualified(node, tag.namespace(), tag.name()));
    // Namespace declarations made on this element (those in scope here but not in the parent).
    for ns in node.namespaces() {
        let declared_above = parent.is_some_and(|p| p.namespaces().any(|pn| pn == ns));
        if !declared_above {
            let name = ns.name().map_or_else(|| "xmlns".to_owned(), |n| format!("xmlns:{n}"));
            e.attrs.push((name, ns.uri().to_owned()));
        }
    }
    for a in node.attributes() {
        e.attrs.push((qualified(node, a.namespace(), a.name()), a.value().to_owned()));
    }
    for c in node.children() {
        if c.is_element() {
            e.children.push(Child::Element(convert(c, Some(node))));
        } else if c.is_text()
            && let Some(t) = c.text()
        {
            e.children.push(Child::Text(t.to_owned()));
        }
    }
    e
}

/// A canonical form of an element tree: attributes sorted, whitespace-only text dropped and other text trimmed.
/// Elements named in `drop` (direct children of the root) are left out.
pub fn canonical(root: &Element, drop: &[&str]) -> Element {
    let mut attrs = root.attrs.clone();
    attrs.sort();
    let children = root
        .children
        .iter()
        .filter_map(|c| match c {
            Child::Element(e) if drop.contains(&e.name.as_str()) => None,
            Child::Element(e) => Some(Child::Element(canonical(e, &[]))),
            Child::Text(t) if t.trim().is_empty() => None,
            Child::Text(t) => Some(Child::Text(t.trim().to_owned())),
        })
        .collect();
    Element { name: root.name.clone(), attrs, children }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        let e = Element::new("a").attr("x", "1'\"<&>").child(Element::new("b").text("</b><c>&amp;"));
        let xml = render(&e);
        let back = parse_document(&xml).unwrap_or_else(|e| panic!("{e:?}\n{xml}"));
        assert_eq!(back.get_attr("x"), Some("1'\"<&>"));
        assert_eq!(back.find("b").map(Element::text_content).as_deref(), Some("</b><c>&amp;"));
    }

    #[test]
    fn fragments() {
        let els = parse_fragment("<watchdog model='i6300esb' action='reset'/>\n<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>")
            .unwrap_or_default();
        assert_eq!(els.len(), 2);
        assert_eq!(els[1].find("backend").map(Element::text_content).as_deref(), Some("/dev/urandom"));
        assert!(parse_fragment("").is_ok_and(|v| v.is_empty()));

        let bad = "<a>\n  <b></c>\n</a>";
        let err = parse_fragment(bad).err().unwrap_or(XmlError { offset: 0, message: String::new() });
        assert_eq!(&bad[err.offset..err.offset + 4], "</c>", "{err:?}");
        assert_eq!(err.message, "expected 'b' tag, not 'c'");
        assert!(parse_fragment("hello <a/>").is_err());
        let open = parse_fragment("<a/>\n<watchdog model='x'>").err();
        assert_eq!(open, Some(XmlError { offset: 5, message: "<watchdog> is never closed".into() }));
        assert!(parse_fragment("<!DOCTYPE x [<!ENTITY e 'x'>]><a/>").is_err());
        let ns = parse_fragment("<q:x xmlns:q='urn:q' q:y='1'/>").unwrap_or_default();
        assert_eq!(render_compact(&ns[0]), "<q:x xmlns:q=\"urn:q\" q:y=\"1\"/>");
    }

    #[test]
    fn canonical_form_ignores_formatting() {
        let a = parse_document("<d b='2' a='1'>\n  <x> t </x>\n  <!-- c -->\n  <metadata><m/></metadata>\n</d>");
        let b = parse_document("<d a=\"1\" b=\"2\"><x>t</x></d>");
        let (Ok(a), Ok(b)) = (a, b) else { panic!("parse") };
        assert_eq!(render_compact(&canonical(&a, &["metadata"])), render_compact(&canonical(&b, &[])));
    }
}
