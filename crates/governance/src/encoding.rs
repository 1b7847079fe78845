//! The byte encodings SSH uses: standard base64 with padding, and the SSH wire format's
//! `uint32` and length-prefixed `string` (RFC 4251), read with bounds checks so no input can
//! make a read go past its end.

use alloc::string::String;
use alloc::vec::Vec;

use crate::error::{Error, Result};

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding.
pub fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b0 = chunk[0];
        let b1 = chunk.get(1).copied().unwrap_or(0);
        let b2 = chunk.get(2).copied().unwrap_or(0);
        let triple = (u32::from(b0) << 16) | (u32::from(b1) << 8) | u32::from(b2);
        let symbols = [
            (triple >> 18) & 63,
            (triple >> 12) & 63,
            (triple >> 6) & 63,
            triple & 63,
        ];
        for (index, symbol) in symbols.iter().enumerate() {
            if index <= chunk.len() {
                out.push(char::from(ALPHABET[*symbol as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn symbol_value(byte: u8) -> Option<u32> {
    match byte {
        b'A'..=b'Z' => Some(u32::from(byte - b'A')),
        b'a'..=b'z' => Some(u32::from(byte - b'a') + 26),
        b'0'..=b'9' => Some(u32::from(byte - b'0') + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes standard base64; ASCII whitespace (armor line breaks) is skipped, padding is
/// optional at the end and refused anywhere else.
pub fn base64_decode(text: &str, what: &'static str) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut accumulator: u32 = 0;
    let mut bits = 0u32;
    let mut padding = 0usize;
    for byte in text.bytes() {
        if byte.is_ascii_whitespace() {
            continue;
        }
        if byte == b'=' {
            padding += 1;
            continue;
        }
        if padding > 0 {
            return Err(Error::Base64 { what });
        }
        let value = symbol_value(byte).ok_or(Error::Base64 { what })?;
        accumulator = (accumulator << 6) | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((accumulator >> bits) & 0xff) as u8);
        }
    }
    // Leftover bits must be zero padding of at most one symbol's worth, and the `=` count must
    // match what was left over (none, or the two or one that complete a quantum).
    let leftover_ok = bits < 6 && accumulator & ((1 << bits) - 1) == 0;
    let padding_ok = padding == 0 || padding == (4 - (text_symbols(text) % 4)) % 4;
    if !leftover_ok || !padding_ok || padding > 2 {
        return Err(Error::Base64 { what });
    }
    Ok(out)
}

fn text_symbols(text: &str) -> usize {
    text.bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != b'=')
        .count()
}

/// Reads the SSH wire format from a byte slice.
pub struct WireReader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> WireReader<'a> {
    /// A reader over `bytes`; `what` names them in errors.
    pub fn new(bytes: &'a [u8], what: &'static str) -> WireReader<'a> {
        WireReader { bytes, what }
    }

    fn truncated(&self) -> Error {
        Error::Signature {
            reason: alloc::format!("{} is truncated", self.what),
        }
    }

    /// Takes `count` raw bytes.
    pub fn take(&mut self, count: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < count {
            return Err(self.truncated());
        }
        let (head, tail) = self.bytes.split_at(count);
        self.bytes = tail;
        Ok(head)
    }

    /// A big-endian `uint32`.
    pub fn u32(&mut self) -> Result<u32> {
        let bytes = self.take(4)?;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// A `string`: a `uint32` length and that many bytes.
    pub fn string(&mut self) -> Result<&'a [u8]> {
        let length = self.u32()? as usize;
        self.take(length)
    }

    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// What is left.
    pub fn rest(&self) -> &'a [u8] {
        self.bytes
    }
}

/// Appends a big-endian `uint32`.
pub fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// Appends a `string`. Every string this crate writes is far below 4 GiB (inputs are bounded),
/// so the length always fits; a longer one would be cut to its first 4 GiB.
pub fn put_string(out: &mut Vec<u8>, bytes: &[u8]) {
    let length = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    put_u32(out, length);
    out.extend_from_slice(&bytes[..length as usize]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_every_length() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        for length in 0..40 {
            let encoded = base64_encode(&bytes[..length]);
            assert_eq!(base64_decode(&encoded, "t").unwrap(), &bytes[..length]);
        }
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
    }

    #[test]
    fn base64_refuses_garbage_and_misplaced_padding() {
        assert!(base64_decode("Zm9v!", "t").is_err());
        assert!(base64_decode("Zm=9v", "t").is_err());
        assert!(base64_decode("Zm8===", "t").is_err());
        // A last symbol with non-zero leftover bits is not canonical.
        assert!(base64_decode("Zm9=", "t").is_err());
    }

    #[test]
    fn wire_reader_stops_at_the_end() {
        let mut reader = WireReader::new(&[0, 0, 0, 5, 1, 2], "t");
        assert!(reader.string().is_err());
        let mut reader = WireReader::new(&[0, 0], "t");
        assert!(reader.u32().is_err());
    }
}
