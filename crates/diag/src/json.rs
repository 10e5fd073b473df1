//! A strict JSON (RFC 8259) reader that keeps the position of every key and value.
//!
//! serde_json reports the position of syntax errors but not of values, and the config loader needs the position
//! of each value to point at semantic mistakes (a bad size, an unknown key) in JSON handed over by Nix just as it
//! does for TOML. JSON is small enough to read by hand: no comments, no trailing commas, duplicate keys rejected,
//! nesting bounded.

use std::ops::Range;

use crate::doc::{Entry, Node, Value};

/// A syntax error and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Where the problem is.
    pub span: Range<usize>,
    /// What is wrong.
    pub message: String,
}

const MAX_DEPTH: usize = 128;

/// Parses a whole JSON document.
pub fn parse(text: &str) -> Result<Node, JsonError> {
    let mut p = Parser { s: text.as_bytes(), text, pos: 0, depth: 0 };
    p.ws();
    let node = p.value()?;
    p.ws();
    if p.pos < p.s.len() {
        return Err(p.err_here("JSON syntax: trailing characters after the document"));
    }
    Ok(node)
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn err_here(&self, message: &str) -> JsonError {
        JsonError { span: self.pos..self.pos + 1, message: message.to_owned() }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8, what: &str) -> Result<(), JsonError> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.err_here(&format!("JSON syntax: expected {what}")))
        }
    }

    fn value(&mut self) -> Result<Node, JsonError> {
        let start = self.pos;
        let value = match self.peek() {
            Some(b'{') => self.object()?,
            Some(b'[') => self.array()?,
            Some(b'"') => Value::Str(self.string()?),
            Some(b't') => self.word("true", Value::Bool(true))?,
            Some(b'f') => self.word("false", Value::Bool(false))?,
            Some(b'n') => self.word("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            Some(_) => return Err(self.err_here("JSON syntax: expected a value")),
            None => return Err(self.err_here("JSON syntax: unexpected end of input, expected a value")),
        };
        Ok(Node { span: start..self.pos, value })
    }

    fn word(&mut self, word: &str, value: Value) -> Result<Value, JsonError> {
        if self.s[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.err_here("JSON syntax: expected a value"))
        }
    }

    fn enter(&mut self) -> Result<(), JsonError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err_here("JSON: nested too deeply"));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Value, JsonError> {
        self.enter()?;
        self.pos += 1;
        let mut entries: Vec<Entry> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Table(entries));
        }
        loop {
            self.ws();
            let key_start = self.pos;
            if self.peek() != Some(b'"') {
                return Err(self.err_here("JSON syntax: expected a key in double quotes"));
            }
            let key = self.string()?;
            let key_span = key_start..self.pos;
            // A set beside the list: a linear scan made a 100k-VM file (what a Nix module may produce) quadratic.
            if !seen.insert(key.clone()) {
                return Err(JsonError { span: key_span, message: format!("duplicate key \"{key}\"") });
            }
            self.ws();
            self.expect(b':', "':'")?;
            self.ws();
            let node = self.value()?;
            entries.push(Entry { key, key_span, node });
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.err_here("JSON syntax: expected ',' or '}'")),
            }
        }
        self.depth -= 1;
        Ok(Value::Table(entries))
    }

    fn array(&mut self) -> Result<Value, JsonError> {
        self.enter()?;
        self.pos += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value()?);
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.err_here("JSON syntax: expected ',' or ']'")),
            }
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let digits =
            self.text.get(self.pos..self.pos + 4).ok_or_else(|| self.err_here("JSON syntax: short \\u escape"))?;
        let v = u32::from_str_radix(digits, 16).map_err(|_| self.err_here("JSON syntax: bad \\u escape"))?;
        self.pos += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, JsonError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = String::new();
        loop {
            // Copy the run of plain characters at once (it is valid UTF-8: the input is a &str and we stop only at
            // ASCII bytes).
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(self.text.get(run_start..self.pos).unwrap_or_default());
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let esc = self.peek().ok_or_else(|| self.err_here("JSON syntax: unfinished escape"))?;
                    self.pos += 1;
                    match esc {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if !self.s[self.pos..].starts_with(b"\\u") {
                                    return Err(self.err_here("JSON syntax: lone surrogate in \\u escape"));
                                }
                                self.pos += 2;
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err_here("JSON syntax: bad surrogate pair"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            let c = char::from_u32(code)
                                .ok_or_else(|| self.err_here("JSON syntax: \\u escape is not a character"))?;
                            out.push(c);
                        }
                        _ => {
                            self.pos -= 1;
                            return Err(self.err_here("JSON syntax: unknown escape"));
                        }
                    }
                }
                Some(_) => return Err(self.err_here("JSON syntax: control character in string")),
                None => {
                    return Err(JsonError {
                        span: start..start + 1,
                        message: "JSON syntax: unterminated string".into(),
                    });
                }
            }
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        if self.digits() == 0 {
            return Err(self.err_here("JSON syntax: expected digits"));
        }
        if self.s[int_start] == b'0' && self.pos - int_start > 1 {
            return Err(JsonError { span: int_start..self.pos, message: "JSON syntax: leading zero".into() });
        }
        let mut float = false;
        if self.peek() == Some(b'.') {
            float = true;
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.err_here("JSON syntax: expected digits after '.'"));
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            float = true;
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.err_here("JSON syntax: expected exponent digits"));
            }
        }
        let text = self.text.get(start..self.pos).unwrap_or_default();
        if !float && let Ok(n) = text.parse::<i64>() {
            return Ok(Value::Int(n));
        }
        text.parse::<f64>()
            .map(Value::Float)
            .map_err(|_| JsonError { span: start..self.pos, message: format!("JSON: cannot read number {text}") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Value {
        match parse(text) {
            Ok(n) => n.value,
            Err(e) => panic!("{text}: {e:?}"),
        }
    }

    fn err(text: &str) -> JsonError {
        match parse(text) {
            Ok(n) => panic!("accepted {text}: {n:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn values() {
        assert_eq!(ok(" true "), Value::Bool(true));
        assert_eq!(ok("null"), Value::Null);
        assert_eq!(ok("-12"), Value::Int(-12));
        assert_eq!(ok("1.5e2"), Value::Float(150.0));
        assert_eq!(ok(r#""a\"b\u00e9\ud83d\ude00\n""#), Value::Str("a\"bé😀\n".into()));
        assert_eq!(ok("[]"), Value::Array(vec![]));
        assert_eq!(ok("{}"), Value::Table(vec![]));
    }

    #[test]
    fn spans_point_at_keys_and_values() {
        let text = "{\n  \"vms\": {\"a\": {\"memory\": \"16 GB\"}}\n}";
        let Value::Table(top) = ok(text) else { panic!() };
        assert_eq!(&text[top[0].key_span.clone()], "\"vms\"");
        let Value::Table(vms) = &top[0].node.value else { panic!() };
        let Value::Table(a) = &vms[0].node.value else { panic!() };
        assert_eq!(&text[a[0].node.span.clone()], "\"16 GB\"");
    }

    #[test]
    fn rejects_what_strict_json_rejects() {
        for bad in ["{\"a\":1,}", "[1,]", "01", "{a:1}", "\"x", "1 2", "// c\n1", "{\"a\":1,\"a\":2}", "\"\\x\"", "-"] {
            err(bad);
        }
        let e = err("{\"a\":1,\"a\":2}");
        assert_eq!(e.span, 7..10);
        assert!(e.message.contains("duplicate"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let text = "[".repeat(10_000);
        assert!(err(&text).message.contains("deeply"));
    }
}
