//! Choosing an edition of Windows: by image index, or by the name people use for it.
//!
//! Recipes say `Pro` or `Enterprise`; the install image says `EDITIONID` `Professional` and `NAME`
//! `Windows 11 Pro`. A name selects the images whose `EDITIONID`, `NAME`, `DISPLAYNAME` or `FLAGS` equal it, or
//! whose `NAME` equals it after the product prefix (`Windows 11 `, `Windows Server 2022 `) — compared without case,
//! spaces, `-` and `_`. If nothing matches that way, the common names below map to edition ids:
//!
//! | name | `EDITIONID` |
//! |---|---|
//! | Home | Core |
//! | Home N | CoreN |
//! | Home Single Language | CoreSingleLanguage |
//! | Pro | Professional |
//! | Pro N | ProfessionalN |
//! | Pro Education (N) | ProfessionalEducation(N) |
//! | Pro for Workstations, Pro Workstation (N) | ProfessionalWorkstation(N) |
//! | Education (N), Enterprise (N) | Education(N), Enterprise(N) |
//! | Enterprise LTSC, LTSC | EnterpriseS |
//! | Enterprise N LTSC | EnterpriseSN |
//! | IoT Enterprise (LTSC) | IoTEnterprise(S) |
//! | Standard, Datacenter | ServerStandard, ServerDatacenter — the Desktop Experience image |
//! | Standard Core, Datacenter Core | the same edition ids, the `Server Core` image |
//!
//! Server media carry each edition twice (Server Core and Desktop Experience, same `EDITIONID`); a bare
//! `Standard` takes the Desktop Experience one, `Standard Core` the other. A name that still matches several
//! images is an error that lists them; an index always selects exactly one.

use crate::error::{Error, Result};
use crate::wim::{Arch, Edition};

/// How a recipe names the edition to install.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EditionSelector {
    /// The image index (1-based).
    Index(u32),
    /// A name; see the [module docs](self) for how it matches.
    Name(String),
}

impl std::str::FromStr for EditionSelector {
    type Err = Error;

    /// A positive number is an index, anything else a name.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::InvalidArgument("an empty edition name".into()));
        }
        match s.parse::<u32>() {
            Ok(0) => Err(Error::InvalidArgument("edition index 0: image indexes start at 1".into())),
            Ok(i) => Ok(EditionSelector::Index(i)),
            Err(_) => Ok(EditionSelector::Name(s.to_string())),
        }
    }
}

impl std::fmt::Display for EditionSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EditionSelector::Index(i) => write!(f, "{i}"),
            EditionSelector::Name(n) => f.write_str(n),
        }
    }
}

/// Common names → (EDITIONID, installation type wanted: `Some(true)` Server Core, `Some(false)` not Core).
const ALIASES: &[(&str, &str, Option<bool>)] = &[
    ("home", "Core", None),
    ("homen", "CoreN", None),
    ("homesinglelanguage", "CoreSingleLanguage", None),
    ("homechina", "CoreCountrySpecific", None),
    ("pro", "Professional", None),
    ("pron", "ProfessionalN", None),
    ("proeducation", "ProfessionalEducation", None),
    ("proeducationn", "ProfessionalEducationN", None),
    ("proforworkstations", "ProfessionalWorkstation", None),
    ("proworkstation", "ProfessionalWorkstation", None),
    ("proworkstations", "ProfessionalWorkstation", None),
    ("pronforworkstations", "ProfessionalWorkstationN", None),
    ("proworkstationn", "ProfessionalWorkstationN", None),
    ("enterpriseltsc", "EnterpriseS", None),
    ("ltsc", "EnterpriseS", None),
    ("enterprisenltsc", "EnterpriseSN", None),
    ("iotenterprise", "IoTEnterprise", None),
    ("iotenterpriseltsc", "IoTEnterpriseS", None),
    ("standard", "ServerStandard", Some(false)),
    ("standarddesktopexperience", "ServerStandard", Some(false)),
    ("standardcore", "ServerStandard", Some(true)),
    ("datacenter", "ServerDatacenter", Some(false)),
    ("datacenterdesktopexperience", "ServerDatacenter", Some(false)),
    ("datacentercore", "ServerDatacenter", Some(true)),
];

/// Lower case without spaces, `-`, `_`, `(` and `)`.
fn normalize(s: &str) -> String {
    s.chars().filter(|c| !matches!(c, ' ' | '-' | '_' | '(' | ')')).flat_map(char::to_lowercase).collect()
}

/// `Windows 11 Pro` → `Pro`; `Windows Server 2022 Standard` → `Standard`.
fn without_product(name: &str) -> &str {
    let Some(rest) = name.strip_prefix("Windows ") else { return name };
    let rest = rest.strip_prefix("Server ").unwrap_or(rest);
    match rest.split_once(' ') {
        Some((version, tail)) if version.chars().next().is_some_and(|c| c.is_ascii_digit()) => tail,
        _ => name,
    }
}

fn is_core(e: &Edition) -> bool {
    e.installation_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("Server Core"))
}

/// A one-line list of editions for error messages.
pub fn describe_editions(editions: &[Edition]) -> String {
    if editions.is_empty() {
        return "none".into();
    }
    editions.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Selects one edition, and checks its architecture if `arch` is given.
pub fn select<'a>(editions: &'a [Edition], selector: &EditionSelector, arch: Option<Arch>) -> Result<&'a Edition> {
    let matches: Vec<&Edition> = match selector {
        EditionSelector::Index(i) => editions.iter().filter(|e| e.index == *i).collect(),
        EditionSelector::Name(name) => by_name(editions, name),
    };
    let chosen = match matches.as_slice() {
        [] => {
            return Err(Error::EditionNotPresent {
                wanted: selector.to_string(),
                present: describe_editions(editions),
            });
        }
        [one] => *one,
        many => {
            // One edition on media for several architectures: the architecture decides.
            let fitting: Vec<&Edition> = many.iter().copied().filter(|e| arch.is_none() || e.arch == arch).collect();
            match fitting.as_slice() {
                [one] => *one,
                _ => {
                    return Err(Error::AmbiguousEdition {
                        wanted: selector.to_string(),
                        matches: many.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
                    });
                }
            }
        }
    };
    if let Some(want) = arch
        && chosen.arch != Some(want)
    {
        return Err(Error::WrongArchitecture {
            edition: chosen.to_string(),
            wanted: want.to_string(),
            found: chosen.arch.map_or_else(|| "an unrecorded architecture".to_string(), |a| a.to_string()),
        });
    }
    Ok(chosen)
}

fn by_name<'a>(editions: &'a [Edition], name: &str) -> Vec<&'a Edition> {
    let want = normalize(name);
    let direct: Vec<&Edition> = editions
        .iter()
        .filter(|e| {
            [Some(e.name.as_str()), e.display_name.as_deref(), e.edition_id.as_deref(), e.flags.as_deref()]
                .into_iter()
                .flatten()
                .chain([without_product(&e.name)])
                .chain(e.display_name.as_deref().map(without_product))
                .any(|n| normalize(n) == want)
        })
        .collect();
    if !direct.is_empty() {
        return direct;
    }
    let Some(&(_, id, core)) = ALIASES.iter().find(|(alias, ..)| *alias == want) else { return Vec::new() };
    let by_id: Vec<&Edition> = editions
        .iter()
        .filter(|e| {
            e.edition_id.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(id))
                || e.flags.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(id))
        })
        .collect();
    match core {
        Some(core) if by_id.len() > 1 => by_id.into_iter().filter(|e| is_core(e) == core).collect(),
        _ => by_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edition(index: u32, name: &str, id: &str, arch: Arch, install: &str) -> Edition {
        Edition {
            index,
            name: name.into(),
            display_name: None,
            description: None,
            edition_id: Some(id.into()),
            flags: Some(id.into()),
            arch: Some(arch),
            product_name: None,
            installation_type: Some(install.into()),
            version: None,
            languages: vec![],
            default_language: None,
            total_bytes: None,
        }
    }

    fn client() -> Vec<Edition> {
        vec![
            edition(1, "Windows 11 Home", "Core", Arch::X64, "Client"),
            edition(2, "Windows 11 Home N", "CoreN", Arch::X64, "Client"),
            edition(3, "Windows 11 Pro", "Professional", Arch::X64, "Client"),
            edition(4, "Windows 11 Pro N", "ProfessionalN", Arch::X64, "Client"),
            edition(5, "Windows 11 Pro for Workstations", "ProfessionalWorkstation", Arch::X64, "Client"),
            edition(6, "Windows 11 Education", "Education", Arch::X64, "Client"),
        ]
    }

    fn pick(editions: &[Edition], s: &str) -> Result<u32> {
        select(editions, &s.parse()?, None).map(|e| e.index)
    }

    #[test]
    fn common_names_pick_the_edition_people_mean() {
        let e = client();
        assert_eq!(pick(&e, "Pro").unwrap(), 3);
        assert_eq!(pick(&e, "pro n").unwrap(), 4);
        assert_eq!(pick(&e, "Professional").unwrap(), 3);
        assert_eq!(pick(&e, "Windows 11 Pro").unwrap(), 3);
        assert_eq!(pick(&e, "Home").unwrap(), 1);
        assert_eq!(pick(&e, "Core").unwrap(), 1);
        assert_eq!(pick(&e, "Pro Workstation").unwrap(), 5);
        assert_eq!(pick(&e, "Pro for Workstations").unwrap(), 5);
        assert_eq!(pick(&e, "6").unwrap(), 6);
    }

    #[test]
    fn an_absent_edition_lists_those_present() {
        let err = pick(&client(), "Enterprise").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, Error::EditionNotPresent { .. }), "{msg}");
        assert!(msg.contains("3 \"Windows 11 Pro\" (Professional, x64)"), "{msg}");
        assert!(matches!(pick(&client(), "9").unwrap_err(), Error::EditionNotPresent { .. }));
        assert!("0".parse::<EditionSelector>().is_err());
    }

    #[test]
    fn the_architecture_is_checked() {
        let e = client();
        let sel = "Pro".parse().unwrap();
        assert_eq!(select(&e, &sel, Some(Arch::X64)).unwrap().index, 3);
        let err = select(&e, &sel, Some(Arch::Arm64)).unwrap_err();
        assert_eq!(err.to_string(), "edition 3 \"Windows 11 Pro\" (Professional, x64) is for x64, not arm64");
    }

    #[test]
    fn server_core_and_desktop_experience_are_told_apart() {
        let e = vec![
            edition(1, "Windows Server 2022 SERVERSTANDARDCORE", "ServerStandard", Arch::X64, "Server Core"),
            edition(2, "Windows Server 2022 SERVERSTANDARD", "ServerStandard", Arch::X64, "Server"),
            edition(3, "Windows Server 2022 SERVERDATACENTERCORE", "ServerDatacenter", Arch::X64, "Server Core"),
            edition(4, "Windows Server 2022 SERVERDATACENTER", "ServerDatacenter", Arch::X64, "Server"),
        ];
        assert_eq!(pick(&e, "Standard").unwrap(), 2);
        assert_eq!(pick(&e, "Standard Core").unwrap(), 1);
        assert_eq!(pick(&e, "Datacenter (Desktop Experience)").unwrap(), 4);
        assert_eq!(pick(&e, "SERVERDATACENTERCORE").unwrap(), 3);
        assert!(matches!(pick(&e, "ServerStandard").unwrap_err(), Error::AmbiguousEdition { .. }));
    }
}
