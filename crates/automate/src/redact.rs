//! Keeping secrets out of logs, reports and JSON.
//!
//! Steps marked `secret: true` are summarised as `type <secret>` by the model itself; this module is the second
//! line: every free-form string that leaves the runner (error messages, command output, log lines) is scrubbed of
//! every secret value the script holds — the typed secrets and the health-check password. Very short values
//! (under [`MIN_LEN`] characters) are not scrubbed from free text, since blanking every "a" would destroy the
//! text while protecting nothing; they are still never printed as step values.

use crate::script::{Action, Script};

/// Shortest secret that is scrubbed from free text.
pub const MIN_LEN: usize = 3;

/// What replaces a secret.
pub const MASK: &str = "<redacted>";

/// The secret values of one script.
#[derive(Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor").field("secrets", &self.secrets.len()).finish()
    }
}

impl Redactor {
    /// Collects the secrets of `script`: secret `type` texts and the health-check password.
    pub fn for_script(script: &Script) -> Self {
        let mut r = Self::default();
        for step in &script.steps {
            if let Action::Type(t) = &step.action
                && t.secret
            {
                r.add(&t.text);
            }
        }
        if let Some(pw) = script.health_check.as_ref().and_then(|h| h.password.as_ref()) {
            r.add(pw.expose());
        }
        for secret in &script.bound_secrets {
            r.add(secret.expose());
        }
        r
    }

    /// Adds a secret value (e.g. the VNC password).
    pub fn add(&mut self, secret: &str) {
        if secret.chars().count() >= MIN_LEN && !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_owned());
            // Longest first, so a secret that contains another is masked whole.
            self.secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn clean(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_secrets_longest_first() {
        let mut r = Redactor::default();
        r.add("pass");
        r.add("password1");
        r.add("ab");
        assert_eq!(r.clean("x password1 pass ab"), "x <redacted> <redacted> ab");
    }

    #[test]
    fn collects_from_a_script() {
        let s = crate::load_str(
            "boot_commands:\n  - type: {text: 'T0p$ecret', secret: true}\n  - type: visible\nhealth_check: {user: u, password: 'sshpass'}\n",
            std::path::Path::new("t.yaml"),
        )
        .expect("loads");
        let r = Redactor::for_script(&s);
        assert_eq!(r.clean("T0p$ecret visible sshpass"), "<redacted> visible <redacted>");
    }
}
