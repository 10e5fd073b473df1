//! The Mac a macOS guest claims to be: model, serial number, logic board serial (MLB), system UUID and ROM.
//!
//! macOS and Apple's services read these from SMBIOS and NVRAM, and OpenCore writes them there from its
//! `config.plist`. Every image gets its own set, generated once when the image is prepared and recorded with it,
//! so the guest keeps one identity across rebuilds of its boot disk and across runs; two images never share one.
//! They are identifiers, not secrets, but they are tied to one machine: vmkit prints none of them, and records
//! them only in the image's own files.
//!
//! The formats follow what Apple's own numbers look like, as documented by the OpenCore project's `macserial`
//! (Utilities/macserial/FORMAT.md in OpenCorePkg): a 12-character serial — location, year-and-half, week,
//! production line, and a product code of the model — and a 17-character MLB — location, year digit, two week
//! digits, item, infix, a board code of the model, and a suffix chosen so that the weighted base-34 checksum
//! comes out at zero. A valid *format* makes macOS and OpenCore accept the identity; whether Apple's servers
//! accept it is another matter that vmkit does not try to influence.

use rand::RngExt;
use serde::{Deserialize, Serialize};

/// Apple's base-34 alphabet (digits and capitals without `I` and `O`).
pub const BASE34: &str = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ";
/// Serial year characters: pairs (first half, second half) for years ending in 0 … 9.
const YEAR_PAIRS: [(u8, u8); 10] = [
    (b'C', b'D'),
    (b'F', b'G'),
    (b'H', b'J'),
    (b'K', b'L'),
    (b'M', b'N'),
    (b'P', b'Q'),
    (b'R', b'S'),
    (b'T', b'V'),
    (b'W', b'X'),
    (b'Y', b'Z'),
];
/// Serial week characters for weeks 1–26 of a half year (`Y` is only the 53rd week of a second half).
const WEEKS: &[u8; 26] = b"123456789CDFGHJKLMNPQRTVWX";

/// A Mac model vmkit can present, with the codes its numbers carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MacModel {
    /// SMBIOS product name (`iMacPro1,1`).
    pub name: &'static str,
    /// The serial's location prefix (3 characters), also the MLB's.
    pub location: &'static str,
    /// Years the model was built.
    pub years: (u32, u32),
    /// Product codes, the serial's last four characters.
    pub product_codes: &'static [&'static str],
    /// Board codes, the MLB's characters 12–15.
    pub board_codes: &'static [&'static str],
}

/// The models vmkit presents. Their codes are those Apple's numbers for the model carry, as listed in
/// OpenCorePkg's Utilities/macserial/modelinfo_autogen.h (the first few of each list).
pub static MODELS: [MacModel; 2] = [
    // The model OSX-KVM presents; supported by Ventura, Sonoma and Sequoia.
    MacModel {
        name: "iMacPro1,1",
        location: "C02",
        years: (2017, 2021),
        product_codes: &["HX87", "HX8F", "JL53", "JL54", "JL55"],
        board_codes: &["JG36", "JG3C", "JG3D", "JG38", "JG39"],
    },
    // Supported from Catalina through Tahoe (Tahoe dropped the iMac Pro).
    MacModel {
        name: "MacPro7,1",
        location: "F5K",
        years: (2019, 2023),
        product_codes: &["P7QM", "PLXV", "PLXW", "PLXX", "PLXY"],
        board_codes: &["K3F7"],
    },
];

impl MacModel {
    /// The model named `name` (exact SMBIOS spelling).
    pub fn named(name: &str) -> Option<&'static Self> {
        MODELS.iter().find(|m| m.name == name)
    }

    /// The model vmkit presents for `version` unless a recipe says otherwise: the iMac Pro up to Sequoia, the
    /// Mac Pro (2019) for Tahoe, which no longer supports the iMac Pro.
    pub fn default_for(version: fetch::macos::MacosVersion) -> &'static Self {
        use fetch::macos::MacosVersion::{Sequoia, Sonoma, Tahoe, Ventura};
        match version {
            Ventura | Sonoma | Sequoia => &MODELS[0],
            Tahoe => &MODELS[1],
        }
    }
}

/// One image's identity. Generated once ([`MacIdentity::generate`]) and kept with the image.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MacIdentity {
    /// SMBIOS product name.
    pub model: String,
    /// System serial number (12 characters).
    pub serial: String,
    /// Logic board serial (17 characters).
    pub mlb: String,
    /// SMBIOS system UUID, upper-case `8-4-4-4-12` hex.
    pub system_uuid: String,
    /// The ROM value (6 bytes, hex), also the NIC's MAC address.
    pub rom: String,
}

impl std::fmt::Debug for MacIdentity {
    /// Shows the model only: the identifiers stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MacIdentity").field("model", &self.model).finish_non_exhaustive()
    }
}

/// An identity that is not well formed (read back from an image's files).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the recorded Mac identity's {field} is not valid: {reason}")]
pub struct IdentityError {
    /// Which field.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

impl MacIdentity {
    /// A new identity for `model`, from the operating system's random source.
    pub fn generate(model: &MacModel) -> Self {
        let mut rng = rand::rng();
        let pick = |rng: &mut rand::rngs::ThreadRng, list: &[&'static str]| list[rng.random_range(0..list.len())];
        let base34 = BASE34.as_bytes();

        let year = rng.random_range(model.years.0..=model.years.1);
        let second_half = rng.random_bool(0.5);
        let (first, second) = YEAR_PAIRS[(year % 10) as usize];
        let year_char = if second_half { second } else { first };
        let week_index = rng.random_range(0..WEEKS.len());
        let mut serial = String::with_capacity(12);
        serial.push_str(model.location);
        serial.push(char::from(year_char));
        serial.push(char::from(WEEKS[week_index]));
        for _ in 0..3 {
            serial.push(char::from(base34[rng.random_range(0..base34.len())]));
        }
        serial.push_str(pick(&mut rng, model.product_codes));

        // The board is made shortly before the Mac: a week earlier, in the same year.
        let week = (week_index as u32 + 1) + if second_half { 26 } else { 0 };
        let board_week = week.saturating_sub(1).max(1);
        let mut mlb = format!("{}{}{board_week:02}{:03}", model.location, year % 10, rng.random_range(0..1000u32));
        for _ in 0..2 {
            mlb.push(char::from(base34[rng.random_range(0..base34.len())]));
        }
        mlb.push_str(pick(&mut rng, model.board_codes));
        mlb.push(char::from(base34[rng.random_range(0..base34.len())]));
        // The last character makes the checksum zero: its weight is 1 (even index 16 of an odd-length string).
        let partial = mlb_checksum(&mlb, 17).unwrap_or(0);
        mlb.push(char::from(base34[(34 - partial % 34) % 34]));

        let mut uuid: [u8; 16] = rng.random();
        uuid[6] = (uuid[6] & 0x0f) | 0x40;
        uuid[8] = (uuid[8] & 0x3f) | 0x80;
        let hex = hex::encode_upper(uuid);
        let system_uuid = format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32]);

        // A unicast, locally administered address: it names no vendor's hardware and is the NIC's MAC too.
        let mut rom: [u8; 6] = rng.random();
        rom[0] = (rom[0] & 0xfc) | 0x02;
        Self { model: model.name.to_owned(), serial, mlb, system_uuid, rom: hex::encode_upper(rom) }
    }

    /// The ROM as bytes.
    pub fn rom_bytes(&self) -> Vec<u8> {
        hex::decode(&self.rom).unwrap_or_default()
    }

    /// The ROM as a MAC address (`02:ab:…`), for the guest's NIC.
    pub fn mac_address(&self) -> String {
        self.rom_bytes().iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
    }

    /// Checks every field's format against its model (for identities read back from an image).
    pub fn validate(&self) -> Result<&'static MacModel, IdentityError> {
        let bad = |field, reason: &str| IdentityError { field, reason: reason.to_owned() };
        let model = MacModel::named(&self.model)
            .ok_or_else(|| bad("model", "not a model vmkit presents (iMacPro1,1, MacPro7,1)"))?;
        let in_base34 = |s: &str| s.bytes().all(|b| BASE34.as_bytes().contains(&b));
        let s = self.serial.as_bytes();
        if s.len() != 12 || !in_base34(&self.serial) {
            return Err(bad("serial", "12 characters from Apple's base-34 alphabet"));
        }
        if !self.serial.starts_with(model.location) {
            return Err(bad("serial", "the model's location prefix"));
        }
        if !YEAR_PAIRS.iter().any(|&(a, b)| s[3] == a || s[3] == b) {
            return Err(bad("serial", "a year character"));
        }
        if !WEEKS.contains(&s[4]) {
            return Err(bad("serial", "a week character"));
        }
        if !model.product_codes.iter().any(|code| *code == &self.serial[8..]) {
            return Err(bad("serial", "one of the model's product codes"));
        }
        let m = self.mlb.as_bytes();
        if m.len() != 17 || !in_base34(&self.mlb) || !self.mlb.starts_with(model.location) {
            return Err(bad("mlb", "17 base-34 characters starting with the model's location"));
        }
        if !m[3..9].iter().all(u8::is_ascii_digit) {
            return Err(bad("mlb", "year, week and item digits"));
        }
        if !model.board_codes.iter().any(|code| *code == &self.mlb[11..15]) {
            return Err(bad("mlb", "one of the model's board codes"));
        }
        if mlb_checksum(&self.mlb, 17) != Some(0) {
            return Err(bad("mlb", "its checksum"));
        }
        let u = self.system_uuid.as_bytes();
        let uuid_ok = u.len() == 36
            && u.iter().enumerate().all(|(i, b)| {
                if [8, 13, 18, 23].contains(&i) { *b == b'-' } else { b.is_ascii_digit() || (b'A'..=b'F').contains(b) }
            });
        if !uuid_ok {
            return Err(bad("systemUuid", "upper-case hex in 8-4-4-4-12 form"));
        }
        let rom = hex::decode(&self.rom).map_err(|_| bad("rom", "hex"))?;
        if rom.len() != 6 || rom[0] & 1 != 0 {
            return Err(bad("rom", "6 bytes, a unicast address"));
        }
        Ok(model)
    }
}

/// The weighted sum of a 17-character MLB's base-34 values modulo 34 (0 for a valid MLB), over the characters
/// given so far; `len` is the full length, which decides the weights (3 where index and length share parity).
fn mlb_checksum(mlb: &str, len: usize) -> Option<usize> {
    let mut sum = 0;
    for (i, b) in mlb.bytes().enumerate() {
        let value = BASE34.bytes().position(|c| c == b)?;
        sum += if (i & 1) == (len & 1) { 3 } else { 1 } * value;
    }
    Some(sum % 34)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macos_identities_are_well_formed_and_differ() {
        for model in &MODELS {
            let mut serials = std::collections::HashSet::new();
            for _ in 0..200 {
                let id = MacIdentity::generate(model);
                assert_eq!(id.validate(), Ok(model), "{}", id.serial);
                assert_eq!(id.mac_address().len(), 17);
                serials.insert(id.serial);
            }
            assert!(serials.len() > 190, "serials repeat: {} distinct of 200", serials.len());
        }
        let a = MacIdentity::generate(&MODELS[0]);
        let b = MacIdentity::generate(&MODELS[0]);
        assert_ne!((a.mlb, a.system_uuid, a.rom), (b.mlb, b.system_uuid, b.rom));
    }

    #[test]
    fn macos_identity_validation_catches_each_field() {
        let good = MacIdentity::generate(&MODELS[1]);
        let mut id = good.clone();
        id.model = "MacBookPro16,1".into();
        assert_eq!(id.validate().unwrap_err().field, "model");
        let mut id = good.clone();
        id.serial.replace_range(11..12, if id.serial.ends_with('O') { "I" } else { "O" });
        assert_eq!(id.validate().unwrap_err().field, "serial");
        let mut id = good.clone();
        let last = id.mlb.pop().unwrap();
        id.mlb.push(if last == '0' { '1' } else { '0' });
        assert_eq!(id.validate().unwrap_err().field, "mlb");
        let mut id = good.clone();
        id.system_uuid = id.system_uuid.to_lowercase().replace('-', "");
        assert_eq!(id.validate().unwrap_err().field, "systemUuid");
        let mut id = good.clone();
        id.rom = "01AABBCCDDEE".into();
        assert_eq!(id.validate().unwrap_err().field, "rom");
        // Debug never shows the identifiers.
        let shown = format!("{good:?}");
        assert!(!shown.contains(&good.serial) && !shown.contains(&good.mlb) && !shown.contains(&good.rom));
    }
}
