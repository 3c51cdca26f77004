//! RFC 8785 conformance of the ledger's canonicaliser: the RFC's own examples, the edges the
//! issue names (non-ASCII, deep nesting, large numbers, NaN/inf), and property tests.

use carbon_ops::ledger::canonical::{
    CanonicalError, MAX_DEPTH, check_recordable, format_f64, number_from_f64, to_canonical_string,
};
use carbon_ops::ledger::fastpath::is_canonical;
use proptest::prelude::*;
use serde_json::{Value, json};

fn canon(text: &str) -> String {
    let value: Value = serde_json::from_str(text).expect("test input parses");
    to_canonical_string(&value).expect("test input canonicalises")
}

/// RFC 8785 Appendix B: IEEE-754 bit patterns and their JSON number text.
#[test]
fn rfc8785_appendix_b_numbers() {
    let vectors: &[(u64, &str)] = &[
        (0x0000_0000_0000_0000, "0"),
        (0x8000_0000_0000_0000, "0"),
        (0x0000_0000_0000_0001, "5e-324"),
        (0x8000_0000_0000_0001, "-5e-324"),
        (0x7fef_ffff_ffff_ffff, "1.7976931348623157e+308"),
        (0xffef_ffff_ffff_ffff, "-1.7976931348623157e+308"),
        (0x4340_0000_0000_0000, "9007199254740992"),
        (0xc340_0000_0000_0000, "-9007199254740992"),
        (0x4430_0000_0000_0000, "295147905179352830000"),
        (0x44b5_2d02_c7e1_4af5, "9.999999999999997e+22"),
        (0x44b5_2d02_c7e1_4af6, "1e+23"),
        (0x44b5_2d02_c7e1_4af7, "1.0000000000000001e+23"),
        (0x444b_1ae4_d6e2_ef4e, "999999999999999700000"),
        (0x444b_1ae4_d6e2_ef4f, "999999999999999900000"),
        (0x444b_1ae4_d6e2_ef50, "1e+21"),
        (0x3eb0_c6f7_a0b5_ed8c, "9.999999999999997e-7"),
        (0x3eb0_c6f7_a0b5_ed8d, "0.000001"),
        (0x41b3_de43_5555_5553, "333333333.3333332"),
        (0x41b3_de43_5555_5554, "333333333.33333325"),
        (0x41b3_de43_5555_5555, "333333333.3333333"),
        (0x41b3_de43_5555_5556, "333333333.3333334"),
        (0x41b3_de43_5555_5557, "333333333.33333343"),
        (0xbecb_f647_612f_3696, "-0.0000033333333333333333"),
        (0x4314_3ff3_c1cb_0959, "1424953923781206.2"),
    ];
    for &(bits, expected) in vectors {
        let value = f64::from_bits(bits);
        assert_eq!(
            format_f64(value).as_deref(),
            Ok(expected),
            "bits {bits:016x}"
        );
        // The same through a JSON value, and back: the text parses to the same double.
        let v = number_from_f64(value).expect("finite");
        assert_eq!(to_canonical_string(&v).as_deref(), Ok(expected));
        let back: f64 = expected.parse().expect("number text");
        assert_eq!(back.to_bits(), if value == 0.0 { 0 } else { bits });
    }
    // Appendix B's NaN and Infinity rows have no JSON form.
    for bits in [0x7fff_ffff_ffff_ffff_u64, 0x7ff0_0000_0000_0000] {
        assert!(matches!(
            format_f64(f64::from_bits(bits)),
            Err(CanonicalError::NotFinite { .. })
        ));
    }
}

/// RFC 8785 §3.2.2: the example input and its canonical output.
#[test]
fn rfc8785_section_3_2_2_example() {
    let input = r#"{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"#;
    let expected = "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],\
                    \"string\":\"\u{20ac}$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}";
    assert_eq!(canon(input), expected);
}

/// RFC 8785 §3.2.3: members sorted by UTF-16 code units (the emoji's surrogate pair sorts
/// before U+FB33, unlike code-point order).
#[test]
fn rfc8785_section_3_2_3_sorting() {
    let input = r#"{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let expected = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\",\
                    \"\u{f6}\":\"Latin Small Letter O With Diaeresis\",\"\u{20ac}\":\"Euro Sign\",\
                    \"\u{1f600}\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
    assert_eq!(canon(input), expected);
}

#[test]
fn non_ascii_strings_are_kept_literally() {
    let v = json!({"名前": "Zoë — ∑ 😀", "ключ": "\u{7f}\u{2028}"});
    assert_eq!(
        to_canonical_string(&v).as_deref(),
        Ok("{\"ключ\":\"\u{7f}\u{2028}\",\"名前\":\"Zoë — ∑ 😀\"}")
    );
}

#[test]
fn deep_nesting_within_the_limit_round_trips_and_beyond_is_refused() {
    let nest = |depth: usize| -> Value {
        let mut v = json!(1);
        for i in 0..depth {
            v = if i % 2 == 0 {
                json!([v])
            } else {
                json!({ "k": v })
            };
        }
        v
    };
    // `nest(d)` has d levels of arrays/objects.
    let ok = nest(MAX_DEPTH);
    let text = to_canonical_string(&ok).expect("within limit");
    let back: Value = serde_json::from_str(&text).expect("parses back");
    assert_eq!(back, ok);
    assert_eq!(check_recordable(&ok, MAX_DEPTH), Ok(()));
    let too_deep = nest(MAX_DEPTH + 1);
    assert_eq!(
        to_canonical_string(&too_deep),
        Err(CanonicalError::TooDeep { max: MAX_DEPTH })
    );
    assert_eq!(
        check_recordable(&too_deep, MAX_DEPTH),
        Err(CanonicalError::TooDeep { max: MAX_DEPTH })
    );
    // One level more than serde_json reads back: the limit is exactly where reading stops.
    let deeper_text = format!(
        "{}1{}",
        "[".repeat(MAX_DEPTH + 1),
        "]".repeat(MAX_DEPTH + 1)
    );
    assert!(serde_json::from_str::<Value>(&deeper_text).is_err());
}

#[test]
fn large_numbers() {
    assert_eq!(canon("9007199254740992"), "9007199254740992");
    assert_eq!(canon("-9007199254740992"), "-9007199254740992");
    assert_eq!(canon("1e300"), "1e+300");
    assert_eq!(
        canon("123456789012345678901234567890.0"),
        "1.2345678901234568e+29"
    );
    // Integral doubles up to 1e21 print as integers, and read back as the same double.
    assert_eq!(canon("1.7166796217914407e19"), "17166796217914407000");
    assert_eq!(canon("17166796217914407000"), "17166796217914407000");
    // JCS reads integers beyond 2^53 as the double they round to ...
    assert_eq!(canon("9007199254740993"), "9007199254740992");
    assert_eq!(canon("18446744073709551615"), "18446744073709552000");
    // ... so the ledger refuses to record them rather than alter them.
    for text in [
        "9007199254740993",
        "18446744073709551615",
        "-9007199254740993",
    ] {
        let v: Value = serde_json::from_str(text).expect("parses");
        assert!(
            matches!(
                check_recordable(&v, MAX_DEPTH),
                Err(CanonicalError::InexactInteger { .. })
            ),
            "{text}"
        );
    }
    let v: Value =
        serde_json::from_str("[9007199254740992, -9007199254740992, 1e300]").expect("parses");
    assert_eq!(check_recordable(&v, MAX_DEPTH), Ok(()));
}

#[test]
fn nan_and_infinities_are_refused() {
    for f in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = number_from_f64(f).expect_err("not finite");
        assert!(err.to_string().contains("not finite"), "{err}");
    }
    assert_eq!(
        number_from_f64(0.1).map(|v| v.to_string()),
        Ok("0.1".to_owned())
    );
}

/// Numbers compared as doubles: `1.0` and `1` are the same JSON number.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| number_from_f64(f).unwrap_or(Value::Null)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn parse_canonicalise_parse_is_identity(v in arb_json()) {
        let pretty = serde_json::to_string_pretty(&v).expect("serialises");
        let parsed: Value = serde_json::from_str(&pretty).expect("parses");
        let canonical = to_canonical_string(&parsed).expect("canonicalises");
        let reparsed: Value = serde_json::from_str(&canonical).expect("canonical text parses");
        prop_assert!(json_eq(&reparsed, &v), "{canonical}");
    }

    #[test]
    fn canonicalise_is_idempotent(v in arb_json()) {
        let once = to_canonical_string(&v).expect("canonicalises");
        let reparsed: Value = serde_json::from_str(&once).expect("parses");
        prop_assert_eq!(to_canonical_string(&reparsed).expect("canonicalises"), once);
    }

    #[test]
    fn numbers_round_trip_through_their_text(bits in any::<u64>()) {
        let f = f64::from_bits(bits);
        prop_assume!(f.is_finite());
        let text = format_f64(f).expect("finite");
        let back: f64 = text.parse().expect("valid number");
        prop_assert_eq!(back, f);
        let via_json: Value = serde_json::from_str(&text).expect("valid JSON number");
        prop_assert_eq!(via_json.as_f64(), Some(f));
    }
}

/// The fast path's verdict must never be "canonical" for bytes that are not exactly JCS.
fn fast_path_is_sound(bytes: &[u8]) -> Result<(), TestCaseError> {
    if is_canonical(bytes) {
        let parsed: Value = serde_json::from_slice(bytes)
            .map_err(|e| TestCaseError::fail(format!("accepted invalid JSON: {e}")))?;
        let canonical = carbon_ops::ledger::canonical::to_canonical_vec(&parsed)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(canonical, bytes.to_vec());
    }
    Ok(())
}

fn arb_plain_keys_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| number_from_f64(f).unwrap_or(Value::Null)),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z0-9_é€😀\u{fb33}]{0,6}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn fast_path_accepts_canonical_text(v in arb_plain_keys_json()) {
        let canonical = carbon_ops::ledger::canonical::to_canonical_vec(&v).expect("canonicalises");
        prop_assert!(is_canonical(&canonical), "{}", String::from_utf8_lossy(&canonical));
    }

    #[test]
    fn fast_path_never_accepts_non_canonical_text(v in arb_json(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let canonical = carbon_ops::ledger::canonical::to_canonical_vec(&v).expect("canonicalises");
        fast_path_is_sound(&canonical)?;
        fast_path_is_sound(serde_json::to_string(&v).expect("serialises").as_bytes())?;
        fast_path_is_sound(serde_json::to_string_pretty(&v).expect("serialises").as_bytes())?;
        if !canonical.is_empty() {
            let mut mutated = canonical.clone();
            mutated[pos.index(canonical.len())] = byte;
            fast_path_is_sound(&mutated)?;
        }
    }

    #[test]
    fn fast_path_numbers_are_sound(text in "-?(0|[1-9][0-9]{0,22})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?") {
        fast_path_is_sound(text.as_bytes())?;
        fast_path_is_sound(format!("[{text}]").as_bytes())?;
    }
}

#[test]
fn fast_path_rejects_known_non_canonical_forms() {
    for text in [
        "1.0",
        "1E3",
        "1e3",
        "-0",
        "0.10",
        "1e21",
        "100000000000000000000000",
        "\"\\u0041\"",
        "\"\\/\"",
        "\"\\u001F\"",
        "\"\\u000a\"",
        "{\"b\":1,\"a\":2}",
        "{\"a\":1,\"a\":1}",
        "[1, 2]",
        " 1",
        "9007199254740993",
        "0.0000001",
        "4.50",
        "1234567890123456789012.5",
    ] {
        assert!(!is_canonical(text.as_bytes()), "{text}");
    }
    for text in [
        "1",
        "-1.5",
        "1e+21",
        "0.000001",
        "1e-7",
        "\"\\u001f\\n\"",
        "{\"a\":1,\"b\":[true,null]}",
        "9007199254740992",
        "231.5",
        "-0.0001",
        "123456789012345.6",
        "0.30000000000000004",
    ] {
        assert!(is_canonical(text.as_bytes()), "{text}");
    }
}
