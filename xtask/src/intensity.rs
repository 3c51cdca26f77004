//! `cargo xtask gen-intensity`: regenerates the bundled grid-intensity table
//! `carbon-ops-agent/src/carbon/data/intensity.json` from the MIT-licensed `codecarbon` wheel.
//!
//! Inputs (read, never modified):
//! - `codecarbon/data/private_infra/global_energy_mix.json`: per-country annual electricity mix
//!   and `carbon_intensity` (gCO2e/kWh) with its `year` (Our World in Data, from Ember and the
//!   Energy Institute), keyed by ISO 3166-1 alpha-3.
//! - `codecarbon/data/cloud/impact.csv`: cloud provider regions → gCO2e/kWh (the providers' own
//!   published figures; the URL of each is kept).
//! - ISO 3166-1 alpha-2 ↔ alpha-3 pairs from Debian's `iso-codes` package
//!   (`/usr/share/iso-codes/json/iso_3166-1.json`), to accept two-letter codes too.
//!
//! The wheel must be unpacked first (no zip dependency here):
//! `pip download --no-deps codecarbon -d /tmp/cc && python3 -m zipfile -e /tmp/cc/codecarbon-*.whl /tmp/cc/x`
//! then `cargo xtask gen-intensity --wheel /tmp/cc/x`. The output is deterministic (sorted keys,
//! fixed number formatting), so regenerating from the same wheel gives the same bytes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// Where Debian's `iso-codes` package keeps the ISO 3166-1 table.
pub const DEFAULT_ISO_3166_JSON: &str = "/usr/share/iso-codes/json/iso_3166-1.json";

/// Regenerates the intensity table from an unpacked codecarbon wheel (`wheel_or_dir` is the
/// directory holding `codecarbon/`, or `codecarbon/` itself, or its `data/` directory) into `out`.
pub fn generate(wheel_or_dir: &Path, out: &Path) -> Result<()> {
    generate_with_iso(wheel_or_dir, Path::new(DEFAULT_ISO_3166_JSON), out)
}

/// As [`generate`], with an explicit ISO 3166-1 JSON (the `iso-codes` format).
pub fn generate_with_iso(wheel_or_dir: &Path, iso_json: &Path, out: &Path) -> Result<()> {
    let data = find_data_dir(wheel_or_dir)?;
    let version = wheel_version(wheel_or_dir);
    let mix_path = data.join("private_infra/global_energy_mix.json");
    let mix: Value = serde_json::from_str(
        &fs::read_to_string(&mix_path)
            .with_context(|| format!("reading {}", mix_path.display()))?,
    )
    .with_context(|| format!("parsing {}", mix_path.display()))?;
    let iso: Value = serde_json::from_str(&fs::read_to_string(iso_json).with_context(|| {
        format!(
            "reading {} (install Debian's `iso-codes` package: apt-get install iso-codes)",
            iso_json.display()
        )
    })?)
    .with_context(|| format!("parsing {}", iso_json.display()))?;
    let a2_of = alpha2_by_alpha3(&iso)?;

    let Some(mix) = mix.as_object() else {
        bail!(
            "{} is not a JSON object keyed by country",
            mix_path.display()
        );
    };
    let mut countries = BTreeMap::new();
    let mut skipped = Vec::new();
    for (a3, entry) in mix {
        let intensity = entry.get("carbon_intensity").and_then(Value::as_f64);
        let year = entry.get("year").and_then(Value::as_u64);
        let name = entry
            .get("country_name")
            .and_then(Value::as_str)
            .unwrap_or("");
        match (intensity, year) {
            (Some(g), Some(y)) if g > 0.0 && g.is_finite() => {
                countries.insert(
                    a3.clone(),
                    json!({
                        "a2": a2_of.get(a3.as_str()),
                        "name": name,
                        "g_per_kwh": round3(g),
                        "year": y,
                    }),
                );
            }
            _ => skipped.push(json!({
                "a3": a3,
                "reason": "carbon_intensity missing or not positive in source",
            })),
        }
    }

    let csv_path = data.join("cloud/impact.csv");
    let csv =
        fs::read_to_string(&csv_path).with_context(|| format!("reading {}", csv_path.display()))?;
    let cloud =
        parse_impact_csv(&csv).with_context(|| format!("parsing {}", csv_path.display()))?;

    let table = json!({
        "generated_by": "cargo xtask gen-intensity (xtask/src/intensity.rs)",
        "source": {
            "package": format!("codecarbon {version} (PyPI wheel)"),
            "package_licence": "MIT (Copyright (c) 2019 Mila, BCG Gamma, CometML, Haverford College; 2023 Code Carbon NGO)",
            "countries": "codecarbon/data/private_infra/global_energy_mix.json: Our World in Data energy dataset (Ember, Energy Institute Statistical Review), CC BY 4.0; lifecycle gCO2e/kWh of electricity generation, annual",
            "cloud": "codecarbon/data/cloud/impact.csv: providers' published region figures (URL per row)",
            "iso_codes": "ISO 3166-1 alpha-2/alpha-3 pairs from Debian iso-codes (LGPL-2.1+ data files)",
        },
        "countries": countries,
        "cloud": cloud,
        "skipped": skipped,
    });
    let mut text = serde_json::to_string_pretty(&table)?;
    text.push('\n');
    if let Some(parent) = out.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

fn find_data_dir(root: &Path) -> Result<PathBuf> {
    if root.is_file() {
        bail!(
            "{} is a file; unpack the wheel first: python3 -m zipfile -e {} DIR, then pass DIR",
            root.display(),
            root.display()
        );
    }
    for cand in [
        root.join("codecarbon/data"),
        root.join("data"),
        root.to_path_buf(),
    ] {
        if cand.join("private_infra/global_energy_mix.json").is_file() {
            return Ok(cand);
        }
    }
    bail!(
        "no codecarbon/data/private_infra/global_energy_mix.json under {}; pass the unpacked wheel directory",
        root.display()
    )
}

/// The version from `codecarbon-X.Y.Z.dist-info`, or "unknown version".
fn wheel_version(root: &Path) -> String {
    let Ok(entries) = fs::read_dir(root) else {
        return "unknown version".into();
    };
    let mut versions: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix("codecarbon-")
                .and_then(|r| r.strip_suffix(".dist-info"))
                .map(str::to_owned)
        })
        .collect();
    versions.sort();
    versions.pop().unwrap_or_else(|| "unknown version".into())
}

fn alpha2_by_alpha3(iso: &Value) -> Result<BTreeMap<String, String>> {
    let Some(list) = iso.get("3166-1").and_then(Value::as_array) else {
        bail!("ISO 3166-1 JSON lacks the \"3166-1\" array");
    };
    let mut map = BTreeMap::new();
    for e in list {
        if let (Some(a2), Some(a3)) = (
            e.get("alpha_2").and_then(Value::as_str),
            e.get("alpha_3").and_then(Value::as_str),
        ) {
            map.insert(a3.to_owned(), a2.to_owned());
        }
    }
    Ok(map)
}

/// Parses codecarbon's `impact.csv` (no quoted fields in it) into
/// `{"provider:region": {country_a3, g_per_kwh, city, source}}`.
fn parse_impact_csv(csv: &str) -> Result<BTreeMap<String, Value>> {
    let mut lines = csv.lines();
    let header = lines.next().context("empty csv")?;
    let cols: Vec<&str> = header.trim_start_matches('\u{feff}').split(',').collect();
    let idx = |name: &str| {
        cols.iter()
            .position(|c| c.trim() == name)
            .with_context(|| format!("column {name} missing"))
    };
    let (ip, ir, ic, ii, isrc, icity) = (
        idx("provider")?,
        idx("region")?,
        idx("countryIsoCode")?,
        idx("impact")?,
        idx("source")?,
        idx("city")?,
    );
    let mut out = BTreeMap::new();
    for (n, line) in lines.enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        let get = |i: usize| f.get(i).map(|s| s.trim()).unwrap_or("");
        let g: f64 = get(ii)
            .parse()
            .with_context(|| format!("row {}: impact {:?} is not a number", n + 2, get(ii)))?;
        let key = format!("{}:{}", get(ip).to_lowercase(), get(ir).to_lowercase());
        out.insert(
            key,
            json!({
                "country_a3": get(ic),
                "city": get(icity),
                "g_per_kwh": round3(g),
                "source": get(isrc),
            }),
        );
    }
    Ok(out)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
