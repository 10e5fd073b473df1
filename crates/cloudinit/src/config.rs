//! The cloud-config model and its YAML rendering.
//!
//! Only what an unattended image build needs is modelled, each field typed so that the YAML can only come out in
//! the shape cloud-init's schema accepts: users with SSH keys and sudo but a locked password, hostname, packages,
//! files, commands. The YAML is produced by a serializer (never by gluing strings), which quotes every value that a
//! YAML 1.1 reader such as PyYAML — the one cloud-init uses — would otherwise turn into a boolean, number, date or
//! null (`yes`, `0644`, `2024-01-01`, `~`). Values are validated before rendering, so a bad username or hostname
//! is reported against the input, not discovered in a guest's log half an hour later.

use serde::Serialize;

use crate::CloudInitError;

/// The `#cloud-config` document for `user-data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudConfig {
    /// The guest's hostname (also its `local-hostname` in meta-data).
    pub hostname: String,
    /// Accounts to create. The distribution's default user is not created.
    pub users: Vec<User>,
    /// Extra packages to install on first boot (refreshes the package index first when non-empty).
    pub packages: Vec<String>,
    /// Files to write on first boot.
    pub write_files: Vec<WriteFile>,
    /// Commands to run at the end of first boot, in order.
    pub runcmd: Vec<RunCommand>,
    /// The system locale. `C.UTF-8` exists on every Debian-based system, even a minimal one without `locales`.
    pub locale: Option<String>,
    /// Let cloud-init write `/etc/hosts` so the hostname resolves (sudo warns on every call otherwise).
    pub manage_etc_hosts: bool,
    /// A timezone name such as `Etc/UTC`.
    pub timezone: Option<String>,
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login name.
    pub name: String,
    /// `authorized_keys` lines (`ssh-ed25519 AAAA… comment`).
    pub ssh_authorized_keys: Vec<String>,
    /// Passwordless sudo for everything.
    pub sudo: bool,
    /// Login shell.
    pub shell: String,
    /// Supplementary groups (must exist in the image).
    pub groups: Vec<String>,
}

/// A file written on first boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteFile {
    /// Absolute path in the guest.
    pub path: String,
    /// The text to write.
    pub content: String,
    /// Mode bits, e.g. `0o644` (rendered as the string `"0644"`, the form the schema requires).
    pub permissions: Option<u32>,
    /// `user:group`.
    pub owner: Option<String>,
    /// Append instead of replacing.
    pub append: bool,
}

/// A command for `runcmd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunCommand {
    /// Run directly, no shell: program and arguments (safe for any argument text).
    Exec(Vec<String>),
    /// A line for `sh -c` (for pipes and redirections).
    Shell(String),
}

impl User {
    /// A user who logs in with `keys` only and may `sudo` without a password, with bash as shell.
    pub fn admin(name: &str, keys: Vec<String>) -> Self {
        Self { name: name.to_owned(), ssh_authorized_keys: keys, sudo: true, shell: "/bin/bash".into(), groups: vec![] }
    }
}

impl CloudConfig {
    /// A config with the defaults an unattended build wants (`locale: C.UTF-8`, `manage_etc_hosts: true`).
    pub fn new(hostname: &str) -> Self {
        Self {
            hostname: hostname.to_owned(),
            users: vec![],
            packages: vec![],
            write_files: vec![],
            runcmd: vec![],
            locale: Some("C.UTF-8".into()),
            manage_etc_hosts: true,
            timezone: None,
        }
    }

    /// Checks every value against what cloud-init and the guest accept.
    pub fn validate(&self) -> Result<(), CloudInitError> {
        validate_hostname(&self.hostname)?;
        for user in &self.users {
            validate_username(&user.name)?;
            for key in &user.ssh_authorized_keys {
                validate_authorized_key(key)?;
            }
            if !user.shell.starts_with('/') || user.shell.contains(char::is_whitespace) {
                return Err(invalid("shell", &user.shell, "an absolute path such as /bin/bash"));
            }
            for group in &user.groups {
                validate_username(group).map_err(|_| invalid("group", group, "a group name like `adm`"))?;
            }
        }
        for pkg in &self.packages {
            validate_package(pkg)?;
        }
        for file in &self.write_files {
            if !file.path.starts_with('/') || file.path.contains('\0') {
                return Err(invalid("write_files path", &file.path, "an absolute path"));
            }
            if let Some(mode) = file.permissions
                && mode > 0o7777
            {
                return Err(invalid("write_files permissions", &format!("{mode:o}"), "mode bits up to 7777 (octal)"));
            }
            if let Some(owner) = &file.owner
                && (owner.is_empty() || owner.contains(char::is_whitespace))
            {
                return Err(invalid("write_files owner", owner, "`user` or `user:group`"));
            }
        }
        for cmd in &self.runcmd {
            match cmd {
                RunCommand::Exec(argv) if argv.is_empty() || argv.iter().any(|a| a.contains('\0')) => {
                    return Err(invalid("runcmd", &format!("{argv:?}"), "a program and its arguments"));
                }
                RunCommand::Shell(line) if line.trim().is_empty() || line.contains('\0') => {
                    return Err(invalid("runcmd", line, "a non-empty shell line"));
                }
                _ => {}
            }
        }
        if let Some(locale) = &self.locale
            && (locale.is_empty() || !locale.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b)))
        {
            return Err(invalid("locale", locale, "a locale name like C.UTF-8"));
        }
        if let Some(tz) = &self.timezone
            && (tz.is_empty() || tz.starts_with('/') || tz.contains("..") || tz.contains(char::is_whitespace))
        {
            return Err(invalid("timezone", tz, "a zone name like Etc/UTC"));
        }
        Ok(())
    }

    /// The `user-data` file: `#cloud-config` and the YAML document.
    pub fn render(&self) -> Result<String, CloudInitError> {
        self.validate()?;
        let doc = Doc {
            hostname: &self.hostname,
            fqdn: None,
            manage_etc_hosts: self.manage_etc_hosts,
            locale: self.locale.as_deref(),
            timezone: self.timezone.as_deref(),
            ssh_pwauth: false,
            disable_root: true,
            users: self.users.iter().map(UserDoc::from).collect(),
            package_update: !self.packages.is_empty(),
            packages: &self.packages,
            write_files: self.write_files.iter().map(FileDoc::from).collect(),
            runcmd: self.runcmd.iter().map(CmdDoc::from).collect(),
        };
        let yaml = crate::to_yaml("user-data", &doc)?;
        Ok(format!("#cloud-config\n{yaml}"))
    }
}

#[derive(Serialize)]
struct Doc<'a> {
    hostname: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    fqdn: Option<&'a str>,
    manage_etc_hosts: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    locale: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timezone: Option<&'a str>,
    ssh_pwauth: bool,
    disable_root: bool,
    users: Vec<UserDoc<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    package_update: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    packages: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    write_files: Vec<FileDoc<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    runcmd: Vec<CmdDoc<'a>>,
}

#[derive(Serialize)]
struct UserDoc<'a> {
    name: &'a str,
    lock_passwd: bool,
    shell: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sudo: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<String>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    ssh_authorized_keys: &'a [String],
}

impl<'a> From<&'a User> for UserDoc<'a> {
    fn from(u: &'a User) -> Self {
        Self {
            name: &u.name,
            lock_passwd: true,
            shell: &u.shell,
            sudo: u.sudo.then_some("ALL=(ALL) NOPASSWD:ALL"),
            groups: (!u.groups.is_empty()).then(|| u.groups.join(", ")),
            ssh_authorized_keys: &u.ssh_authorized_keys,
        }
    }
}

#[derive(Serialize)]
struct FileDoc<'a> {
    path: &'a str,
    content: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    owner: Option<&'a str>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    append: bool,
}

impl<'a> From<&'a WriteFile> for FileDoc<'a> {
    fn from(f: &'a WriteFile) -> Self {
        Self {
            path: &f.path,
            content: &f.content,
            permissions: f.permissions.map(|m| format!("{m:04o}")),
            owner: f.owner.as_deref(),
            append: f.append,
        }
    }
}

#[derive(Serialize)]
#[serde(untagged)]
enum CmdDoc<'a> {
    Exec(&'a [String]),
    Shell(&'a str),
}

impl<'a> From<&'a RunCommand> for CmdDoc<'a> {
    fn from(c: &'a RunCommand) -> Self {
        match c {
            RunCommand::Exec(argv) => Self::Exec(argv),
            RunCommand::Shell(line) => Self::Shell(line),
        }
    }
}

fn invalid(field: &'static str, value: &str, expected: &str) -> CloudInitError {
    CloudInitError::Invalid { field, value: value.to_owned(), expected: expected.to_owned() }
}

/// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, each 1–63 long, ≤253 in all.
pub fn validate_hostname(name: &str) -> Result<(), CloudInitError> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok { Ok(()) } else { Err(invalid("hostname", name, "letters, digits and inner hyphens, like ci-runner-1")) }
}

/// A portable Linux user name: `[a-z_][a-z0-9_-]*`, at most 32 characters, not `root`.
pub fn validate_username(name: &str) -> Result<(), CloudInitError> {
    let mut bytes = name.bytes();
    let ok = name.len() <= 32
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && name != "root";
    if ok { Ok(()) } else { Err(invalid("username", name, "lowercase letters, digits, `_` or `-`, not root")) }
}

/// A Debian/Ubuntu package name (optionally `name=version`).
pub fn validate_package(spec: &str) -> Result<(), CloudInitError> {
    let (name, version) = spec.split_once('=').unwrap_or((spec, "x"));
    let ok = name.len() >= 2
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
        && !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.~:".contains(&b));
    if ok { Ok(()) } else { Err(invalid("package", spec, "a package name like htop (or htop=3.2.2-2)")) }
}

/// One `authorized_keys` line: a known key type, base64 key material, an optional comment, one line.
pub fn validate_authorized_key(line: &str) -> Result<(), CloudInitError> {
    const TYPES: &[&str] = &[
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
    ];
    let mut parts = line.split_ascii_whitespace();
    let ok = !line.contains(['\n', '\r'])
        && parts.next().is_some_and(|t| TYPES.contains(&t))
        && parts
            .next()
            .is_some_and(|k| k.len() > 16 && k.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)));
    let shown: String = line.chars().take(40).collect();
    if ok {
        Ok(())
    } else {
        Err(invalid("ssh key", &shown, "an OpenSSH public key line like `ssh-ed25519 AAAA… comment`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHbQ5rUg1CE8aF3bA1j7k9Wn2E5eQk0u1G0x8yq0m3yQ vmkit@test";

    fn sample() -> CloudConfig {
        let mut c = CloudConfig::new("ci-runner");
        c.users.push(User::admin("agent", vec![KEY.into()]));
        c
    }

    #[test]
    fn minimal_config_snapshot() {
        insta::assert_snapshot!(sample().render().unwrap());
    }

    #[test]
    fn full_config_snapshot() {
        let mut c = sample();
        c.packages = vec!["htop".into(), "curl=7.88.1-10+deb12u5".into()];
        c.timezone = Some("Europe/Berlin".into());
        c.users[0].groups = vec!["adm".into(), "systemd-journal".into()];
        c.write_files.push(WriteFile {
            path: "/etc/motd".into(),
            content: "yes\n0644\n'quoted' \"double\" # not a comment\n".into(),
            permissions: Some(0o644),
            owner: Some("root:root".into()),
            append: false,
        });
        c.runcmd.push(RunCommand::Exec(vec!["touch".into(), "/var/tmp/a file; not a shell".into()]));
        c.runcmd.push(RunCommand::Shell("echo done > /var/tmp/done".into()));
        insta::assert_snapshot!(c.render().unwrap());
    }

    #[test]
    fn bad_values_are_refused_with_the_value() {
        let mut c = sample();
        c.hostname = "bad_host".into();
        assert!(c.render().unwrap_err().to_string().contains("bad_host"));
        let mut c = sample();
        c.users[0].name = "Root Admin".into();
        assert!(c.render().unwrap_err().to_string().contains("Root Admin"));
        let mut c = sample();
        c.users[0].ssh_authorized_keys = vec!["ssh-ed25519 AAAA\nrunpwn".into()];
        assert!(c.render().is_err());
        let mut c = sample();
        c.packages = vec!["htop; rm -rf /".into()];
        assert!(c.render().is_err());
        let mut c = sample();
        c.write_files.push(WriteFile {
            path: "relative".into(),
            content: String::new(),
            permissions: None,
            owner: None,
            append: false,
        });
        assert!(c.render().is_err());
    }

    #[test]
    fn names() {
        assert!(validate_hostname("a.b-c.example").is_ok());
        assert!(validate_hostname("-a").is_err());
        assert!(validate_hostname(&"a".repeat(64)).is_err());
        assert!(validate_username("_svc-1").is_ok());
        assert!(validate_username("root").is_err());
        assert!(validate_username("1abc").is_err());
        assert!(validate_package("g++").is_ok());
        assert!(validate_package("A").is_err());
    }
}
