//! A minimal typed HTML tree, rendered with every text and attribute value escaped.
//!
//! The report contains OCR text (anything a screen shows, `<script>` included), file names and error messages;
//! building it by gluing strings would make every one of them an injection. Here text can only enter as
//! [`Node::Text`] or an attribute value, both escaped on output. The one way to put markup in verbatim,
//! [`Node::Static`], takes a `&'static str`, so only constants compiled into vmkit (the style sheet) can use it.

/// An HTML node.
#[derive(Debug, Clone)]
pub enum Node {
    /// An element.
    Element(Element),
    /// Text, escaped on output.
    Text(String),
    /// Markup compiled into the binary (the style sheet), written as is.
    Static(&'static str),
}

/// An element with attributes and children.
#[derive(Debug, Clone)]
pub struct Element {
    tag: &'static str,
    attrs: Vec<(&'static str, String)>,
    children: Vec<Node>,
}

/// Elements that have no closing tag.
const VOID: &[&str] = &["img", "meta", "br", "hr", "link", "input"];

impl Element {
    /// A new element.
    pub fn new(tag: &'static str) -> Self {
        Self { tag, attrs: Vec::new(), children: Vec::new() }
    }

    /// Adds an attribute (its value is escaped on output).
    pub fn attr(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.attrs.push((name, value.into()));
        self
    }

    /// Adds a child element.
    pub fn child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Adds children.
    pub fn children(mut self, children: impl IntoIterator<Item = Element>) -> Self {
        self.children.extend(children.into_iter().map(Node::Element));
        self
    }

    /// Adds a text child (escaped on output).
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.children.push(Node::Text(text.into()));
        self
    }

    /// Adds compiled-in markup.
    pub fn static_markup(mut self, markup: &'static str) -> Self {
        self.children.push(Node::Static(markup));
        self
    }

    /// Renders the element and its subtree.
    pub fn render(&self, out: &mut String) {
        out.push('<');
        out.push_str(self.tag);
        for (name, value) in &self.attrs {
            out.push(' ');
            out.push_str(name);
            out.push_str("=\"");
            escape_into(value, out);
            out.push('"');
        }
        out.push('>');
        if VOID.contains(&self.tag) {
            return;
        }
        for child in &self.children {
            match child {
                Node::Element(e) => e.render(out),
                Node::Text(t) => escape_into(t, out),
                Node::Static(s) => out.push_str(s),
            }
        }
        out.push_str("</");
        out.push_str(self.tag);
        out.push('>');
    }
}

/// A whole document: doctype plus the `<html>` element.
pub fn document(html: &Element) -> String {
    let mut out = String::from("<!DOCTYPE html>\n");
    html.render(&mut out);
    out.push('\n');
    out
}

fn escape_into(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        let e = Element::new("p")
            .attr("title", "a\"b<c>'&")
            .text("<script>alert('x')</script> & more")
            .child(Element::new("img").attr("src", "x.png"));
        let mut out = String::new();
        e.render(&mut out);
        assert_eq!(
            out,
            "<p title=\"a&quot;b&lt;c&gt;&#39;&amp;\">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more\
             <img src=\"x.png\"></p>"
        );
    }
}
