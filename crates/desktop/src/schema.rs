//! Checking generated domain XML against libvirt's own RELAX NG schema.
//!
//! `virt-xml-validate FILE domain` runs `xmllint --relaxng domain.rng` on one file; checking many domains that
//! way parses the (large) schema once per file. [`validate_domains`] runs xmllint once for all of them, which is
//! what lets `vmkit desktop plan --validate` check a 50-VM config in well under a second.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian (and most distributions) install libvirt's schemas.
pub const DEFAULT_SCHEMA: &str = "/usr/share/libvirt/schemas/domain.rng";

/// Why validation could not run.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    /// The schema file is missing.
    #[error("libvirt's domain schema {0} is missing (Debian package libvirt-daemon or libvirt-clients)")]
    NoSchema(PathBuf),
    /// xmllint could not be run.
    #[error("cannot run xmllint (Debian package libxml2-utils): {0}")]
    Xmllint(std::io::Error),
    /// Writing the temporary files failed.
    #[error("writing domain XML to a temporary directory: {0}")]
    Io(std::io::Error),
}

/// The outcome for one domain: `Ok` or xmllint's complaints.
pub type Verdict = Result<(), String>;

/// Validates each (name, xml) against `schema` with a single xmllint run; verdicts in input order.
pub fn validate_domains(domains: &[(String, String)], schema: &Path) -> Result<Vec<(String, Verdict)>, SchemaError> {
    if !schema.is_file() {
        return Err(SchemaError::NoSchema(schema.to_owned()));
    }
    if domains.is_empty() {
        return Ok(Vec::new());
    }
    let dir = tempfile::Builder::new().prefix("vmkit-schema-").tempdir().map_err(SchemaError::Io)?;
    let mut files = Vec::new();
    for (i, (_, xml)) in domains.iter().enumerate() {
        let f = dir.path().join(format!("{i}.xml"));
        std::fs::write(&f, xml).map_err(SchemaError::Io)?;
        files.push(f);
    }
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--relaxng")
        .arg(schema)
        .args(&files)
        .output()
        .map_err(SchemaError::Xmllint)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut verdicts = Vec::new();
    for ((name, _), file) in domains.iter().zip(&files) {
        let prefix = file.display().to_string();
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&prefix)).collect();
        let ok = lines.iter().any(|l| l.ends_with(" validates"));
        let verdict = if ok {
            Ok(())
        } else {
            let msgs: Vec<String> = lines
                .iter()
                .map(|l| l.strip_prefix(&prefix).unwrap_or(l).trim_start_matches(':').trim().to_owned())
                .collect();
            Err(if msgs.is_empty() { "xmllint gave no verdict".to_owned() } else { msgs.join("; ") })
        };
        verdicts.push((name.clone(), verdict));
    }
    Ok(verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_domains_in_one_run() -> Result<(), SchemaError> {
        let good = "<domain type='kvm'><name>a</name><memory>131072</memory><os><type>hvm</type></os></domain>";
        let bad = "<domain type='kvm'><name>b</name><memory>1</memory><bogus/><os><type>hvm</type></os></domain>";
        let v = validate_domains(&[("a".into(), good.into()), ("b".into(), bad.into())], Path::new(DEFAULT_SCHEMA))?;
        assert_eq!(v[0], ("a".to_owned(), Ok(())));
        assert!(v[1].1.as_ref().is_err_and(|e| e.contains("bogus") || e.contains("fails to validate")), "{v:?}");
        Ok(())
    }
}
