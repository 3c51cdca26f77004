//! Allocation-free fast path of verification: decides that a line already *is* its RFC 8785
//! form by scanning it once, instead of parsing it into a `Value` and re-serialising.
//!
//! The scanner is deliberately conservative: it accepts only bytes that JCS would produce
//! (no whitespace, members in strictly increasing UTF-16 order, only the escapes of RFC 8785
//! §3.2.2.2, numbers equal to the ECMAScript form of their double) and answers "not sure" for
//! anything else (an escaped member name, a genesis entry, any doubt), in which case the exact
//! slow path in `verify` decides and explains. Soundness (accept ⇒ canonical) is property-tested
//! against the `Value`-based canonicaliser. Pure.

use super::canonical::{MAX_DEPTH, cmp_utf16, write_f64_into};
use super::chain::{GENESIS_KIND, HASH_MEMBER_LEN, hex_lower};
use super::checkpoint::CHECKPOINT_KIND;
use super::ts::is_rfc3339_utc;
use super::verify::LineFacts;
use sha2::{Digest, Sha256};
use std::cmp::Ordering;

/// True only if `bytes` is exactly the JCS serialisation of some JSON value.
pub fn is_canonical(bytes: &[u8]) -> bool {
    if std::str::from_utf8(bytes).is_err() {
        return false;
    }
    let mut s = Scanner { b: bytes, i: 0 };
    s.value(0) && s.i == bytes.len()
}

/// The facts of a canonical, well-formed, correctly hashed non-genesis entry line; `None`
/// when the line needs the slow path (which then reports what is wrong, if anything).
pub fn fast_facts(line: &[u8]) -> Option<LineFacts> {
    const NAMES: [&[u8]; 7] = [
        b"hash",
        b"kind",
        b"payload",
        b"prev_hash",
        b"seq",
        b"ts",
        b"v",
    ];
    std::str::from_utf8(line).ok()?;
    let mut s = Scanner { b: line, i: 0 };
    s.eat(b'{').then_some(())?;
    let mut spans = [(0usize, 0usize); 7];
    for (n, name) in NAMES.iter().enumerate() {
        if n > 0 {
            s.eat(b',').then_some(())?;
        }
        s.eat(b'"').then_some(())?;
        s.b.get(s.i..s.i + name.len()).filter(|k| k == name)?;
        s.i += name.len();
        (s.eat(b'"') && s.eat(b':')).then_some(())?;
        let start = s.i;
        s.value(1).then_some(())?;
        spans[n] = (start, s.i);
    }
    (s.eat(b'}') && s.i == line.len()).then_some(())?;
    let text = |n: usize| &line[spans[n].0..spans[n].1];
    let plain_string = |n: usize| {
        let t = text(n);
        (t.len() >= 2 && t[0] == b'"' && !t.contains(&b'\\')).then(|| &t[1..t.len() - 1])
    };
    let hash = plain_string(0).filter(|h| is_hex64(h))?;
    let kind = plain_string(1).filter(|k| {
        !k.is_empty() && *k != GENESIS_KIND.as_bytes() && *k != CHECKPOINT_KIND.as_bytes()
    })?;
    text(2).starts_with(b"{").then_some(())?;
    let prev_hash = plain_string(3).filter(|h| is_hex64(h))?;
    let seq = text(4);
    (seq.iter().all(u8::is_ascii_digit) && seq.len() <= 16).then_some(())?;
    let seq: u64 = std::str::from_utf8(seq).ok()?.parse().ok()?;
    plain_string(5)
        .and_then(|t| std::str::from_utf8(t).ok())
        .filter(|t| is_rfc3339_utc(t))?;
    (text(6) == b"1").then_some(())?;
    // `hash` is the first member, so the hashed bytes are `{` + everything after it.
    let mut hasher = Sha256::new();
    hasher.update(b"{");
    hasher.update(&line[HASH_MEMBER_LEN + 1..]);
    let computed = hex_lower(&hasher.finalize());
    (computed.as_bytes() == hash).then_some(())?;
    Some(LineFacts {
        seq,
        kind: String::from_utf8(kind.to_vec()).ok()?,
        prev_hash: String::from_utf8(prev_hash.to_vec()).ok()?,
        hash: computed,
        genesis: None,
        checkpoint: None,
    })
}

fn is_hex64(h: &[u8]) -> bool {
    h.len() == 64
        && h.iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> bool {
        match self.peek() {
            Some(b'{') => depth < MAX_DEPTH && self.object(depth),
            Some(b'[') => depth < MAX_DEPTH && self.array(depth),
            Some(b'"') => self.string().is_some(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => false,
        }
    }

    fn object(&mut self, depth: usize) -> bool {
        self.i += 1;
        if self.eat(b'}') {
            return true;
        }
        let mut prev: Option<&[u8]> = None;
        loop {
            let Some((start, end, escaped)) = self.string() else {
                return false;
            };
            if escaped {
                return false; // member names with escapes: leave ordering to the slow path
            }
            let key = &self.b[start..end];
            if let Some(p) = prev {
                let (Ok(p), Ok(k)) = (std::str::from_utf8(p), std::str::from_utf8(key)) else {
                    return false;
                };
                if cmp_utf16(p, k) != Ordering::Less {
                    return false;
                }
            }
            prev = Some(key);
            if !self.eat(b':') || !self.value(depth + 1) {
                return false;
            }
            if self.eat(b'}') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    fn array(&mut self, depth: usize) -> bool {
        self.i += 1;
        if self.eat(b']') {
            return true;
        }
        loop {
            if !self.value(depth + 1) {
                return false;
            }
            if self.eat(b']') {
                return true;
            }
            if !self.eat(b',') {
                return false;
            }
        }
    }

    /// Scans a string with only canonical escapes; returns (content start, end, had escapes).
    fn string(&mut self) -> Option<(usize, usize, bool)> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.i;
        let mut escaped = false;
        loop {
            // Skip plain bytes in one tight loop.
            let rest = self.b.get(self.i..)?;
            self.i += rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return Some((start, self.i - 1, escaped)),
                0x00..=0x1f => return None,
                b'\\' => {
                    escaped = true;
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'b' | b't' | b'n' | b'f' | b'r' => {}
                        b'u' => {
                            let hex = self.b.get(self.i..self.i + 4)?;
                            self.i += 4;
                            // Only \u00XX (lowercase) for controls without a short escape.
                            let low = match hex[3] {
                                d @ b'0'..=b'9' => d - b'0',
                                d @ b'a'..=b'f' => d - b'a' + 10,
                                _ => return None,
                            };
                            let ok =
                                hex[0] == b'0' && hex[1] == b'0' && matches!(hex[2], b'0' | b'1');
                            let code = if hex[2] == b'1' { 16 + low } else { low };
                            if !ok || matches!(code, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return None;
                            }
                        }
                        _ => return None,
                    }
                }
                _ => {}
            }
        }
    }

    fn number(&mut self) -> bool {
        let start = self.i;
        self.eat(b'-');
        let int_start = self.i;
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
            }
            _ => return false,
        }
        let int_digits = self.i - int_start;
        let mut plain_integer = true;
        if self.eat(b'.') {
            plain_integer = false;
            let d = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            if self.i == d {
                return false;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            plain_integer = false;
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            let d = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            if self.i == d {
                return false;
            }
        }
        let text = &self.b[start..self.i];
        if plain_integer && int_digits <= 15 {
            // An integer below 10^15 is exact and prints as itself, except negative zero.
            return text != b"-0";
        }
        if let Some(verdict) = quick_fraction_verdict(text) {
            return verdict;
        }
        let Some(value) = std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
        else {
            return false;
        };
        let mut buf = [0u8; 40];
        write_f64_into(value, &mut buf).is_some_and(|n| &buf[..n] == text)
    }
}

/// Decides without formatting whether a plain decimal fraction (`-?int.frac`, no exponent) with
/// at most 15 significant digits is canonical; `None` when formatting must decide.
///
/// Distinct decimals of at most 15 significant digits (DBL_DIG) round to distinct doubles, so
/// such a digit string without trailing zeros is the unique shortest one for its double, and
/// ECMAScript prints it in exactly this layout when 1e-6 <= |x| < 1e21.
fn quick_fraction_verdict(text: &[u8]) -> Option<bool> {
    let body = text.strip_prefix(b"-").unwrap_or(text);
    if body.iter().any(|&c| c == b'e' || c == b'E') {
        return None;
    }
    let dot = body.iter().position(|&c| c == b'.')?;
    let (int, frac) = (&body[..dot], &body[dot + 1..]);
    if frac.last() == Some(&b'0') {
        return Some(false);
    }
    let significant = if int == b"0" {
        let leading = frac.iter().take_while(|&&c| c == b'0').count();
        if leading >= 6 {
            return Some(false); // below 1e-6 ECMAScript uses the exponent form
        }
        frac.len() - leading
    } else {
        if int.len() > 21 {
            return Some(false); // 1e21 and above use the exponent form
        }
        int.len() + frac.len()
    };
    (significant <= 15).then_some(true)
}
