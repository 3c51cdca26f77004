//! RFC 8785 JSON Canonicalization Scheme (JCS) for `serde_json::Value`.
//!
//! The ledger hashes exactly these bytes, so this file is the heart of the format: objects have
//! their members sorted by the UTF-16 code units of their names, no whitespace is emitted,
//! strings use the minimal escapes of RFC 8785 §3.2.2.2, and numbers are printed the way
//! ECMAScript's `Number.prototype.toString` prints an IEEE-754 double (RFC 8785 §3.2.2.3).
//! Pure: no I/O, no allocation beyond the output buffer and one key list per object.

use serde_json::{Map, Number, Value};
use std::cmp::Ordering;

/// Largest integer magnitude that every JSON reader holds exactly (2^53).
pub const MAX_EXACT_INTEGER: u64 = 1 << 53;

/// Deepest nesting of arrays/objects accepted: the deepest `serde_json` parses back (its
/// recursion limit is 128 levels, exclusive), so everything written can be read again.
pub const MAX_DEPTH: usize = 127;

/// Why a value has no canonical form.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CanonicalError {
    /// An integer beyond ±2^53 would be silently rounded by JCS (refused at append time).
    #[error(
        "integer {value} is outside ±2^53 and would be rounded by any JCS reader; store it as a string"
    )]
    InexactInteger { value: String },
    /// NaN or an infinity: JSON cannot carry them and JCS forbids them.
    #[error("number {value} is not finite; NaN and infinities cannot be recorded")]
    NotFinite { value: f64 },
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("value nests deeper than {max} arrays/objects; flatten it")]
    TooDeep { max: usize },
}

/// Returns the JCS serialisation of `value`.
pub fn to_canonical_vec(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::with_capacity(256);
    write_canonical(value, &mut out)?;
    Ok(out)
}

/// Returns the JCS serialisation of `value` as a `String`.
pub fn to_canonical_string(value: &Value) -> Result<String, CanonicalError> {
    let bytes = to_canonical_vec(value)?;
    // The writer only emits UTF-8 (input strings are UTF-8, everything else ASCII).
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Appends the JCS serialisation of `value` to `out` (on error `out` holds a partial value).
pub fn write_canonical(value: &Value, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    write_value(value, out, 0)
}

/// Appends the canonical form of an object given as a map (used for entries).
pub fn write_canonical_object(
    map: &Map<String, Value>,
    out: &mut Vec<u8>,
) -> Result<(), CanonicalError> {
    write_object(map, out, 0)
}

fn write_value(value: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out)?,
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            if depth >= MAX_DEPTH {
                return Err(CanonicalError::TooDeep { max: MAX_DEPTH });
            }
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out, depth + 1)?;
            }
            out.push(b']');
        }
        Value::Object(map) => write_object(map, out, depth)?,
    }
    Ok(())
}

fn write_object(
    map: &Map<String, Value>,
    out: &mut Vec<u8>,
    depth: usize,
) -> Result<(), CanonicalError> {
    if depth >= MAX_DEPTH {
        return Err(CanonicalError::TooDeep { max: MAX_DEPTH });
    }
    // `serde_json`'s default map iterates in code-point order, which is UTF-16 order unless
    // keys mix supplementary characters with U+E000..U+FFFF: sort only when needed.
    let sorted = map
        .keys()
        .is_sorted_by(|a, b| cmp_utf16(a, b) == Ordering::Less);
    let mut members: Vec<(&String, &Value)> = Vec::new();
    if !sorted {
        members.extend(map.iter());
        members.sort_by(|a, b| cmp_utf16(a.0, b.0));
    }
    let iter: Box<dyn Iterator<Item = (&String, &Value)>> = if sorted {
        Box::new(map.iter())
    } else {
        Box::new(members.into_iter())
    };
    out.push(b'{');
    for (i, (key, item)) in iter.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_value(item, out, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}

/// Orders strings by their UTF-16 code units (RFC 8785 §3.2.3).
pub fn cmp_utf16(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.as_bytes().cmp(b.as_bytes());
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Writes a string with the escapes of RFC 8785 §3.2.2.2.
fn write_string(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

fn write_number(n: &Number, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    // JCS treats every number as an IEEE-754 double: integers within ±2^53 print as themselves,
    // larger ones as the double they round to (refused earlier by `check_recordable`).
    if let Some(u) = n.as_u64() {
        if u <= MAX_EXACT_INTEGER {
            out.extend_from_slice(u.to_string().as_bytes());
            return Ok(());
        }
    } else if let Some(i) = n.as_i64()
        && i.unsigned_abs() <= MAX_EXACT_INTEGER
    {
        out.extend_from_slice(i.to_string().as_bytes());
        return Ok(());
    }
    match n.as_f64() {
        Some(f) => write_f64(f, out),
        None => Err(CanonicalError::InexactInteger {
            value: n.to_string(),
        }),
    }
}

/// Checks that a value can be recorded without JCS changing it: integers within ±2^53 and
/// nesting within `max_depth` (floats in a `Value` are always finite).
pub fn check_recordable(value: &Value, max_depth: usize) -> Result<(), CanonicalError> {
    let mut stack: Vec<(&Value, usize)> = vec![(value, 0)];
    while let Some((v, depth)) = stack.pop() {
        match v {
            Value::Number(n) => {
                let exact = n
                    .as_u64()
                    .map(|u| u <= MAX_EXACT_INTEGER)
                    .or_else(|| n.as_i64().map(|i| i.unsigned_abs() <= MAX_EXACT_INTEGER));
                if exact == Some(false) {
                    return Err(CanonicalError::InexactInteger {
                        value: n.to_string(),
                    });
                }
            }
            Value::Array(items) => {
                if depth >= max_depth {
                    return Err(CanonicalError::TooDeep { max: max_depth });
                }
                stack.extend(items.iter().map(|i| (i, depth + 1)));
            }
            Value::Object(map) => {
                if depth >= max_depth {
                    return Err(CanonicalError::TooDeep { max: max_depth });
                }
                stack.extend(map.values().map(|i| (i, depth + 1)));
            }
            Value::Null | Value::Bool(_) | Value::String(_) => {}
        }
    }
    Ok(())
}

/// Formats a double exactly as ECMAScript `Number.prototype.toString` (ECMA-262 §6.1.6.1.20),
/// which RFC 8785 §3.2.2.3 prescribes. Refuses NaN and infinities.
pub fn format_f64(value: f64) -> Result<String, CanonicalError> {
    let mut out = Vec::with_capacity(24);
    write_f64(value, &mut out)?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn write_f64(value: f64, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
    let mut buf = [0u8; 40];
    let n = write_f64_into(value, &mut buf).ok_or(CanonicalError::NotFinite { value })?;
    out.extend_from_slice(&buf[..n]);
    Ok(())
}

/// A fixed stack buffer for `write!` without allocating.
struct StackBuf {
    buf: [u8; 40],
    len: usize,
}

impl StackBuf {
    fn new() -> Self {
        Self {
            buf: [0; 40],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl std::fmt::Write for StackBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(std::fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// The exponent of the lowest set bit of a finite, non-zero double (x = odd · 2^result).
fn lowest_bit_exponent(x: f64) -> i32 {
    let bits = x.to_bits();
    let exp_bits = i32::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
    let fraction = bits & ((1 << 52) - 1);
    let (mantissa, exp) = if exp_bits == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1 << 52), exp_bits - 1075)
    };
    exp + i32::try_from(mantissa.trailing_zeros()).unwrap_or(0)
}

/// Writes the ECMAScript form of `value` into `out` without allocating; returns its length,
/// or `None` for NaN and infinities.
pub fn write_f64_into(value: f64, out: &mut [u8; 40]) -> Option<usize> {
    use std::fmt::Write as _;
    if !value.is_finite() {
        return None;
    }
    if value == 0.0 {
        // Both +0 and -0 print as "0".
        out[0] = b'0';
        return Some(1);
    }
    let abs = value.abs();
    // Rust's `{:e}` prints the shortest digit string that round-trips, the closest one when
    // several are that short: ECMAScript's s, k and n, except that ECMAScript breaks an exact
    // tie between two such strings towards the even one. A tie at k digits with the last digit
    // worth 10^m means x = (s + 1/2)·10^m, so 2x/10^m is odd: the lowest set bit of x is worth
    // 2^(m-1), and two k-digit neighbours fit in one ulp, so k >= 16. Only then is the
    // correctly rounded (ties-to-even) k-digit form computed, and used if it round-trips.
    let mut sci = StackBuf::new();
    write!(sci, "{abs:e}").ok()?;
    let (k_digits, exp10) = match sci.as_str().split_once('e') {
        Some((m, e)) => (
            m.bytes().filter(u8::is_ascii_digit).count(),
            e.parse::<i32>().ok()?,
        ),
        None => return None,
    };
    let m = exp10 + 1 - i32::try_from(k_digits).ok()?;
    if k_digits >= 16 && lowest_bit_exponent(abs) == m - 1 {
        let mut exact = StackBuf::new();
        write!(exact, "{:.*e}", k_digits - 1, abs).ok()?;
        if exact.as_str().parse::<f64>() == Ok(abs) {
            sci = exact;
        }
    }
    let text = sci.as_str();
    let (mantissa, exp) = text.split_once('e')?;
    let mut digits = [0u8; 20];
    let mut k = 0usize;
    for d in mantissa.bytes().filter(u8::is_ascii_digit) {
        *digits.get_mut(k)? = d;
        k += 1;
    }
    let digits = &digits[..k];
    let exp: i32 = exp.parse().ok()?;
    let k = i32::try_from(k).ok()?;
    let n = exp + 1;
    let mut w = StackBuf::new();
    let mut put = |bytes: &[u8]| w.write_str(std::str::from_utf8(bytes).unwrap_or("")).ok();
    if value < 0.0 {
        put(b"-")?;
    }
    if k <= n && n <= 21 {
        put(digits)?;
        for _ in 0..n - k {
            put(b"0")?;
        }
    } else if 0 < n && n <= 21 {
        let split = usize::try_from(n).ok()?;
        put(&digits[..split])?;
        put(b".")?;
        put(&digits[split..])?;
    } else if -6 < n && n <= 0 {
        put(b"0.")?;
        for _ in 0..-n {
            put(b"0")?;
        }
        put(digits)?;
    } else {
        put(&digits[..1])?;
        if k > 1 {
            put(b".")?;
            put(&digits[1..])?;
        }
        put(if n - 1 < 0 { b"e-" } else { b"e+" })?;
        let mut e = StackBuf::new();
        write!(e, "{}", (n - 1).unsigned_abs()).ok()?;
        put(e.as_str().as_bytes())?;
    }
    let len = w.len;
    out[..len].copy_from_slice(&w.buf[..len]);
    Some(len)
}

/// Converts an `f64` into a JSON number, refusing NaN and infinities with a clear error
/// (`serde_json` would silently turn them into `null`).
pub fn number_from_f64(value: f64) -> Result<Value, CanonicalError> {
    Number::from_f64(value)
        .map(Value::Number)
        .ok_or(CanonicalError::NotFinite { value })
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn es_number_edges() {
        assert_eq!(format_f64(1e21).unwrap(), "1e+21");
        assert_eq!(format_f64(1e20).unwrap(), "100000000000000000000");
        assert_eq!(format_f64(1e-6).unwrap(), "0.000001");
        assert_eq!(format_f64(1e-7).unwrap(), "1e-7");
        assert_eq!(format_f64(-1.5e-7).unwrap(), "-1.5e-7");
        assert_eq!(format_f64(123.456).unwrap(), "123.456");
        assert_eq!(format_f64(-0.0).unwrap(), "0");
        assert!(format_f64(f64::NAN).is_err());
        assert!(format_f64(f64::NEG_INFINITY).is_err());
    }

    #[test]
    fn escapes_controls_lowercase() {
        let v = Value::String("\u{1}\u{1f}\u{7f}/\u{2028}".into());
        assert_eq!(
            to_canonical_string(&v).unwrap(),
            "\"\\u0001\\u001f\u{7f}/\u{2028}\""
        );
    }
}
