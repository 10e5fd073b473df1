//! Script variables: values a script types but does not contain — an account name, a password, a public key.
//!
//! A script that declares `variables:` may write `${name}` inside the text of a `type` step; `$${` types a literal
//! `${`. Scripts without `variables:` are read exactly as before (a `$` is just a character). Loading checks that
//! every reference names a declared variable; [`Script::bind`] substitutes the values before a run, and a run of a
//! script whose variables were never bound is refused. A variable declared `secret: true` makes every `type` step
//! that uses it secret, and its value joins the values scrubbed from every output (see [`crate::redact`]), so an
//! image build can hand a password to a shipped script without it reaching a log.
//!
//! ```yaml
//! variables:
//!   username: {default: agent}
//!   password: {secret: true}
//! boot_commands:
//!   - type: '${username}'
//!   - type: '${password}'
//! ```

use std::collections::BTreeMap;

use crate::script::{Action, Script, Secret};

/// A declared variable.
#[derive(Clone, PartialEq, Eq)]
pub struct Variable {
    /// Its name (`[a-z_][a-z0-9_]*`).
    pub name: String,
    /// Never shown: steps that type it are secret, and its value is scrubbed from every output.
    pub secret: bool,
    /// The value when none is given.
    pub default: Option<String>,
    /// What it is for.
    pub description: Option<String>,
}

impl std::fmt::Debug for Variable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let default = match (&self.default, self.secret) {
            (Some(_), true) => Some("<redacted>"),
            (Some(d), false) => Some(d.as_str()),
            (None, _) => None,
        };
        f.debug_struct("Variable")
            .field("name", &self.name)
            .field("secret", &self.secret)
            .field("default", &default)
            .finish_non_exhaustive()
    }
}

/// Whether `name` is a valid variable name.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 64
}

/// A piece of a `type` text: literal characters or a reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Typed as is.
    Text(String),
    /// `${name}`.
    Var(String),
}

/// Splits `text` into literal pieces and `${name}` references (`$${` is a literal `${`); `Err` says what is wrong.
pub fn parse(text: &str) -> Result<Vec<Piece>, String> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            literal.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                return Err("`${` without a closing `}` (write `$${` to type `${`)".to_owned());
            };
            let name = &tail[..end];
            if !valid_name(name) {
                return Err(format!(
                    "`${{{name}}}`: a variable name is lower-case letters, digits and `_` (write `$${{` to type `${{`)"
                ));
            }
            if !literal.is_empty() {
                pieces.push(Piece::Text(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Var(name.to_owned()));
            rest = &tail[end + 1..];
        } else {
            literal.push('$');
            rest = &after[1..];
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(pieces)
}

/// Why a script's variables could not be bound.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindError {
    /// Declared, without a default, and not given.
    #[error("{}: the script declares {}, with no default; give {}", path, list(names), if names.len() == 1 { "its value" } else { "their values" })]
    Missing {
        /// The script.
        path: String,
        /// The variables.
        names: Vec<String>,
    },
    /// Given, but not declared.
    #[error("{path}: the script declares no variable `{name}`")]
    Unknown {
        /// The script.
        path: String,
        /// The name.
        name: String,
    },
    /// A value that cannot be typed.
    #[error("{path}: the value of `{name}` holds a control character, which cannot be typed")]
    Untypeable {
        /// The script.
        path: String,
        /// The name.
        name: String,
    },
}

fn list(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

impl Script {
    /// Whether the script declares variables that [`Script::bind`] has not given values yet.
    pub fn unbound(&self) -> Vec<String> {
        if self.bound { Vec::new() } else { self.variables.iter().map(|v| v.name.clone()).collect() }
    }

    /// The script with `values` (and the declared defaults) substituted into its `type` steps.
    pub fn bind(&self, values: &BTreeMap<String, String>) -> Result<Script, BindError> {
        let path = self.path.display().to_string();
        if let Some(name) = values.keys().find(|k| !self.variables.iter().any(|v| &v.name == *k)) {
            return Err(BindError::Unknown { path, name: name.clone() });
        }
        let mut resolved = BTreeMap::new();
        let mut missing = Vec::new();
        for v in &self.variables {
            match values.get(&v.name).or(v.default.as_ref()) {
                Some(value) if value.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\t')) => {
                    return Err(BindError::Untypeable { path, name: v.name.clone() });
                }
                Some(value) => {
                    resolved.insert(v.name.clone(), (value.clone(), v.secret));
                }
                None => missing.push(v.name.clone()),
            }
        }
        if !missing.is_empty() {
            return Err(BindError::Missing { path, names: missing });
        }
        let mut bound = self.clone();
        bound.bound = true;
        if self.variables.is_empty() || self.bound {
            return Ok(bound);
        }
        for (value, secret) in resolved.values() {
            if *secret {
                bound.bound_secrets.push(Secret::new(value.clone()));
            }
        }
        for step in &mut bound.steps {
            let Action::Type(t) = &mut step.action else { continue };
            // The loader has checked every reference; a text that no longer parses was not loaded by it.
            let pieces = parse(&t.text).unwrap_or_else(|_| vec![Piece::Text(t.text.clone())]);
            let mut text = String::new();
            for piece in pieces {
                match piece {
                    Piece::Text(s) => text.push_str(&s),
                    Piece::Var(name) => match resolved.get(&name) {
                        Some((value, secret)) => {
                            text.push_str(value);
                            t.secret |= *secret;
                        }
                        None => text.push_str(&format!("${{{name}}}")),
                    },
                }
            }
            t.text = text;
        }
        Ok(bound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_and_escapes() {
        assert_eq!(parse("plain $HOME").unwrap(), [Piece::Text("plain $HOME".into())]);
        assert_eq!(
            parse("echo '${key}' >> $${x}").unwrap(),
            [Piece::Text("echo '".into()), Piece::Var("key".into()), Piece::Text("' >> ${x}".into())]
        );
        assert!(parse("${open").unwrap_err().contains("closing"));
        assert!(parse("${Bad-Name}").unwrap_err().contains("lower-case"));
        assert!(valid_name("ssh_public_key") && !valid_name("9x") && !valid_name(""));
    }
}
