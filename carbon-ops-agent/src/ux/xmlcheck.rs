//! A small XML well-formedness check (pure): one root element, every tag closed in order,
//! attributes quoted and unique, entity references known, no stray `<` or `&`. Enough to
//! prove that what [`super::svg`] writes parses as XML, without an XML dependency.

use std::collections::HashSet;

/// Why a document is not well-formed, with the byte offset.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not well-formed XML at byte {at}: {what}")]
pub struct XmlError {
    /// Byte offset.
    pub at: usize,
    /// What is wrong.
    pub what: String,
}

fn err<T>(at: usize, what: impl Into<String>) -> Result<T, XmlError> {
    Err(XmlError {
        at,
        what: what.into(),
    })
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.' | b':') || c >= 0x80
}

fn name(b: &[u8], mut i: usize) -> Result<(String, usize), XmlError> {
    let start = i;
    if i >= b.len() || !(b[i].is_ascii_alphabetic() || b[i] == b'_' || b[i] == b':') {
        return err(i, "expected a name");
    }
    while i < b.len() && is_name_char(b[i]) {
        i += 1;
    }
    Ok((String::from_utf8_lossy(&b[start..i]).into_owned(), i))
}

/// Checks character data (text or an attribute value) for stray `<` and bad references.
fn check_text(b: &[u8], start: usize, end: usize) -> Result<(), XmlError> {
    let mut i = start;
    while i < end {
        match b[i] {
            b'<' => return err(i, "`<` in character data"),
            b'&' => {
                let Some(semi) = b[i..end].iter().position(|&c| c == b';') else {
                    return err(i, "`&` without `;`");
                };
                let r = &b[i + 1..i + semi];
                let ok = matches!(r, b"amp" | b"lt" | b"gt" | b"quot" | b"apos")
                    || (r.len() > 1
                        && r[0] == b'#'
                        && (r[1..].iter().all(u8::is_ascii_digit)
                            || (r.len() > 2
                                && r[1] == b'x'
                                && r[2..].iter().all(u8::is_ascii_hexdigit))));
                if !ok {
                    return err(i, "unknown entity reference");
                }
                i += semi + 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Checks `doc`; returns the number of elements.
pub fn check(doc: &str) -> Result<usize, XmlError> {
    let b = doc.as_bytes();
    let mut stack: Vec<String> = Vec::new();
    let (mut i, mut elements, mut roots) = (0usize, 0usize, 0usize);
    while i < b.len() {
        if b[i] != b'<' {
            let end = b[i..]
                .iter()
                .position(|&c| c == b'<')
                .map_or(b.len(), |p| i + p);
            check_text(b, i, end)?;
            if stack.is_empty() && !b[i..end].iter().all(u8::is_ascii_whitespace) {
                return err(i, "text outside the root element");
            }
            i = end;
            continue;
        }
        let rest = &doc[i..];
        if rest.starts_with("<!--") {
            i += rest.find("-->").map(|p| p + 3).ok_or(XmlError {
                at: i,
                what: "unclosed comment".into(),
            })?;
        } else if rest.starts_with("<?") {
            i += rest.find("?>").map(|p| p + 2).ok_or(XmlError {
                at: i,
                what: "unclosed processing instruction".into(),
            })?;
        } else if rest.starts_with("</") {
            let (n, j) = name(b, i + 2)?;
            let j = skip_ws(b, j);
            if b.get(j) != Some(&b'>') {
                return err(j, "expected `>`");
            }
            match stack.pop() {
                Some(open) if open == n => {}
                Some(open) => return err(i, format!("`</{n}>` closes `<{open}>`")),
                None => return err(i, format!("`</{n}>` without an open element")),
            }
            i = j + 1;
        } else {
            let (n, mut j) = name(b, i + 1)?;
            if stack.is_empty() {
                roots += 1;
                if roots > 1 {
                    return err(i, "more than one root element");
                }
            }
            elements += 1;
            let mut seen = HashSet::new();
            loop {
                let k = skip_ws(b, j);
                match b.get(k) {
                    Some(b'>') => {
                        stack.push(n);
                        i = k + 1;
                        break;
                    }
                    Some(b'/') if b.get(k + 1) == Some(&b'>') => {
                        i = k + 2;
                        break;
                    }
                    Some(_) if k > j => {
                        let (a, m) = name(b, k)?;
                        if !seen.insert(a.clone()) {
                            return err(k, format!("attribute `{a}` repeated"));
                        }
                        let m = skip_ws(b, m);
                        if b.get(m) != Some(&b'=') {
                            return err(m, "expected `=` after an attribute name");
                        }
                        let m = skip_ws(b, m + 1);
                        let Some(&q) = b.get(m).filter(|&&q| q == b'"' || q == b'\'') else {
                            return err(m, "attribute value not quoted");
                        };
                        let Some(close) = b[m + 1..].iter().position(|&c| c == q) else {
                            return err(m, "unclosed attribute value");
                        };
                        check_text(b, m + 1, m + 1 + close)?;
                        j = m + 2 + close;
                    }
                    Some(_) => return err(k, "expected whitespace before an attribute"),
                    None => return err(k, "unclosed tag"),
                }
            }
        }
    }
    if let Some(open) = stack.pop() {
        return err(b.len(), format!("`<{open}>` is never closed"));
    }
    if roots == 0 {
        return err(0, "no root element");
    }
    Ok(elements)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_and_counts_elements() {
        assert_eq!(
            check(
                r#"<?xml version="1.0"?><!-- c --><a x="1" y='&amp;'><b/>t &#38; &#x26;<c></c></a>"#
            ),
            Ok(3)
        );
    }

    #[test]
    fn rejects_each_kind_of_mistake() {
        for bad in [
            "<a><b></a></b>",
            "<a>",
            "<a x=1/>",
            "<a x=\"1\" x=\"2\"/>",
            "<a>&nbsp;</a>",
            "<a>1 < 2</a>",
            "<a/><b/>",
            "text<a/>",
            "",
            "<a x=\"<\"/>",
        ] {
            assert!(check(bad).is_err(), "{bad:?} accepted");
        }
    }
}
