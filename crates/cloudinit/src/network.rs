//! `network-config` (version 2) from a typed model.
//!
//! Without a `network-config` file cloud-init brings up the first NIC with DHCP, which is right for a build VM on
//! QEMU's user-mode network; the file is for guests that need more (a fixed address, a NIC chosen by MAC). Version 2
//! is the form every cloud-init renderer reads (netplan, ENI, networkd, sysconfig). Interfaces are matched by MAC
//! address or name pattern, never by position, so the config survives the guest's interface naming scheme.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::CloudInitError;

/// A version 2 network configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NetworkConfig {
    /// Ethernet interfaces by a config-local id (e.g. `nic0`).
    pub ethernets: BTreeMap<String, Ethernet>,
}

/// One ethernet interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ethernet {
    /// Which device this is.
    pub matching: Match,
    /// Rename the device to this (only with a MAC match).
    pub set_name: Option<String>,
    /// Get an IPv4 address by DHCP.
    pub dhcp4: bool,
    /// Static addresses in CIDR form (`10.0.2.15/24`).
    pub addresses: Vec<String>,
    /// Default IPv4 gateway.
    pub gateway4: Option<String>,
    /// DNS servers.
    pub nameservers: Vec<String>,
}

/// How an interface is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// By MAC address (`52:54:00:12:34:56`).
    Mac(String),
    /// By name, with shell-style globs (`en*`).
    Name(String),
}

impl NetworkConfig {
    /// DHCP on the NIC with this MAC address, renamed to `name` (e.g. `eth0`): a MAC match needs a name, since
    /// the renderers that cannot look devices up by MAC at boot (ENI) would otherwise use the config id.
    pub fn dhcp_on_mac(mac: &str, name: &str) -> Self {
        let mut ethernets = BTreeMap::new();
        ethernets.insert(
            "nic0".to_owned(),
            Ethernet {
                matching: Match::Mac(mac.to_owned()),
                set_name: Some(name.to_owned()),
                dhcp4: true,
                addresses: vec![],
                gateway4: None,
                nameservers: vec![],
            },
        );
        Self { ethernets }
    }

    /// The `network-config` file.
    pub fn render(&self) -> Result<String, CloudInitError> {
        let invalid = |field: &'static str, value: &str, expected: &str| CloudInitError::Invalid {
            field,
            value: value.to_owned(),
            expected: expected.to_owned(),
        };
        let mut ethernets = BTreeMap::new();
        for (id, eth) in &self.ethernets {
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) {
                return Err(invalid("network interface id", id, "letters, digits, `-` or `_`"));
            }
            let mut matching = BTreeMap::new();
            match &eth.matching {
                Match::Mac(mac) => {
                    if eth.set_name.is_none() {
                        return Err(invalid("set-name", id, "a device name whenever a NIC is matched by MAC"));
                    }
                    if !is_mac(mac) {
                        return Err(invalid("macaddress", mac, "six hex pairs like 52:54:00:12:34:56"));
                    }
                    matching.insert("macaddress", mac.to_ascii_lowercase());
                }
                Match::Name(name) => {
                    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"*?-_.".contains(&b)) {
                        return Err(invalid("interface name", name, "a name or glob like en*"));
                    }
                    matching.insert("name", name.clone());
                }
            }
            if let Some(name) = &eth.set_name
                && (name.is_empty() || name.len() > 15 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            {
                return Err(invalid("set-name", name, "an interface name of at most 15 letters or digits"));
            }
            for addr in &eth.addresses {
                let (ip, prefix) = addr.split_once('/').unwrap_or((addr, ""));
                let prefix_ok = prefix.parse::<u8>().is_ok_and(|p| p <= 128);
                if ip.parse::<std::net::IpAddr>().is_err() || !prefix_ok {
                    return Err(invalid("address", addr, "an address with prefix like 10.0.2.15/24"));
                }
            }
            for ip in eth.gateway4.iter().chain(&eth.nameservers) {
                if ip.parse::<std::net::IpAddr>().is_err() {
                    return Err(invalid("IP address", ip, "an IP address like 10.0.2.2"));
                }
            }
            ethernets.insert(
                id.as_str(),
                EthDoc {
                    matching,
                    set_name: eth.set_name.as_deref(),
                    dhcp4: eth.dhcp4,
                    addresses: &eth.addresses,
                    gateway4: eth.gateway4.as_deref(),
                    nameservers: (!eth.nameservers.is_empty()).then_some(Nameservers { addresses: &eth.nameservers }),
                },
            );
        }
        let doc = Doc { network: Network { version: 2, ethernets } };
        crate::to_yaml("network-config", &doc)
    }
}

fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[derive(Serialize)]
struct Doc<'a> {
    network: Network<'a>,
}

#[derive(Serialize)]
struct Network<'a> {
    version: u8,
    ethernets: BTreeMap<&'a str, EthDoc<'a>>,
}

#[derive(Serialize)]
struct EthDoc<'a> {
    #[serde(rename = "match")]
    matching: BTreeMap<&'static str, String>,
    #[serde(rename = "set-name", skip_serializing_if = "Option::is_none")]
    set_name: Option<&'a str>,
    dhcp4: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    addresses: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway4: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nameservers: Option<Nameservers<'a>>,
}

#[derive(Serialize)]
struct Nameservers<'a> {
    addresses: &'a [String],
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dhcp_by_mac_snapshot() {
        insta::assert_snapshot!(NetworkConfig::dhcp_on_mac("52:54:00:AB:cd:01", "eth0").render().unwrap());
    }

    #[test]
    fn static_snapshot_and_validation() {
        let mut cfg = NetworkConfig::default();
        cfg.ethernets.insert(
            "lan".into(),
            Ethernet {
                matching: Match::Name("en*".into()),
                set_name: None,
                dhcp4: false,
                addresses: vec!["10.0.2.15/24".into()],
                gateway4: Some("10.0.2.2".into()),
                nameservers: vec!["10.0.2.3".into()],
            },
        );
        insta::assert_snapshot!(cfg.render().unwrap());
        if let Some(eth) = cfg.ethernets.get_mut("lan") {
            eth.addresses = vec!["10.0.2.300/24".into()];
        }
        assert!(cfg.render().unwrap_err().to_string().contains("10.0.2.300/24"));
        assert!(NetworkConfig::dhcp_on_mac("52:54:00", "eth0").render().is_err());
    }
}
