//! VNC Authentication: DES-encrypt the server's 16-byte challenge with the password as the key.
//!
//! The protocol's quirk: the key is the password's first 8 bytes (zero-padded), each byte with its bits in
//! reverse order. Longer passwords are truncated, as every VNC server does.

use des::Des;
use des::cipher::{Array, BlockCipherEncrypt, KeyInit};

/// The 16-byte response to a VNC Authentication challenge.
pub(crate) fn vnc_auth_response(password: &[u8], challenge: &[u8; 16]) -> [u8; 16] {
    let mut key = [0u8; 8];
    for (k, p) in key.iter_mut().zip(password) {
        *k = p.reverse_bits();
    }
    let cipher = Des::new(&Array::from(key));
    let mut out = [0u8; 16];
    for (dst, src) in out.chunks_exact_mut(8).zip(challenge.chunks_exact(8)) {
        let mut block = Array::from([src[0], src[1], src[2], src[3], src[4], src[5], src[6], src[7]]);
        cipher.encrypt_block(&mut block);
        dst.copy_from_slice(&block);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_vncpasswd_obfuscation_key() {
        // vncpasswd stores a password encrypted with VNC's DES variant under the fixed key 23 82 107 6 35 78 88
        // 7 — the same construction as the authentication response, with the fixed key as "password" and the
        // password as "challenge". `printf password | vncpasswd -f` writes dbd83cfd727a1458.
        let fixed = [23u8, 82, 107, 6, 35, 78, 88, 7];
        let mut challenge = [0u8; 16];
        challenge[..8].copy_from_slice(b"password");
        let out = vnc_auth_response(&fixed, &challenge);
        assert_eq!(hex(&out[..8]), "dbd83cfd727a1458");
    }

    #[test]
    fn long_passwords_are_truncated_to_eight_bytes() {
        let c = [7u8; 16];
        assert_eq!(vnc_auth_response(b"12345678", &c), vnc_auth_response(b"123456789abc", &c));
        assert_ne!(vnc_auth_response(b"1234567", &c), vnc_auth_response(b"12345678", &c));
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
