//! A small hand-written SVG chart writer (pure, no dependencies): line charts (power over
//! time by zone) and bar charts with optional error bars (energy by process, carbon with its
//! interval), stacked into one self-contained document. Every series is a `<g>` with a
//! `data-series` attribute and a `<title>`, so tests and scripts can find it.

use std::fmt::Write;

/// Width of every panel, px.
pub const WIDTH: f64 = 760.0;
/// Height of every panel, px.
pub const PANEL_HEIGHT: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 44.0;
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// Escapes text for XML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 forbids.
            c if ((c as u32) < 0x20 && c != '\n' && c != '\t')
                || c == '\u{FFFE}'
                || c == '\u{FFFF}' =>
            {
                out.push(' ');
            }
            c => out.push(c),
        }
    }
    out
}

/// A named line of `(x, y)` points.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// One bar, with an optional interval drawn as an error bar.
#[derive(Clone, Debug, PartialEq)]
pub struct Bar {
    /// Label under the bar.
    pub label: String,
    /// Height.
    pub value: f64,
    /// Interval `(low, high)`, drawn when present.
    pub interval: Option<(f64, f64)>,
}

fn nice_max(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let mag = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&m| m >= v)
        .unwrap_or(10.0 * mag)
}

fn frame(out: &mut String, title: &str, x_label: &str, y_label: &str, y_max: f64) {
    let (w, h) = (WIDTH - LEFT - RIGHT, PANEL_HEIGHT - TOP - BOTTOM);
    let _ = write!(
        out,
        r##"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text><rect x="{LEFT}" y="{TOP}" width="{w}" height="{h}" fill="none" stroke="#444"/>"##,
        escape(title)
    );
    for i in 0..=4 {
        let v = y_max * f64::from(i) / 4.0;
        let y = TOP + h - h * f64::from(i) / 4.0;
        let _ = write!(
            out,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            LEFT + w,
            LEFT - 6.0,
            y + 4.0,
            fmt_num(v)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text><text x="16" y="{:.1}" font-size="12" text-anchor="middle" transform="rotate(-90 16 {:.1})">{}</text>"#,
        LEFT + w / 2.0,
        PANEL_HEIGHT - 8.0,
        escape(x_label),
        TOP + h / 2.0,
        TOP + h / 2.0,
        escape(y_label)
    );
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// A line chart panel (a `<g>` of height [`PANEL_HEIGHT`]).
pub fn line_chart(title: &str, x_label: &str, y_label: &str, series: &[Series]) -> String {
    let pts = series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for &(x, y) in pts.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if !(x0.is_finite() && x1 > x0) {
        (x0, x1) = (0.0, 1.0);
    }
    let y_max = nice_max(y1);
    let (w, h) = (WIDTH - LEFT - RIGHT, PANEL_HEIGHT - TOP - BOTTOM);
    let mut out = String::from("<g class=\"panel line-chart\">");
    frame(&mut out, title, x_label, y_label, y_max);
    let _ = write!(
        out,
        r#"<text x="{LEFT}" y="{:.1}" font-size="11">{}</text><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"#,
        TOP + h + 14.0,
        fmt_num(x0),
        LEFT + w,
        TOP + h + 14.0,
        fmt_num(x1)
    );
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    LEFT + (x - x0) / (x1 - x0) * w,
                    TOP + h - y / y_max * h
                )
            })
            .collect();
        let name = escape(&s.name);
        let _ = write!(
            out,
            r#"<g data-series="{name}"><title>{name}</title><polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/><rect x="{:.1}" y="{:.1}" width="12" height="12" fill="{colour}"/><text x="{:.1}" y="{:.1}" font-size="12">{name}</text></g>"#,
            path.join(" "),
            WIDTH - RIGHT + 12.0,
            TOP + 18.0 * i as f64,
            WIDTH - RIGHT + 30.0,
            TOP + 10.0 + 18.0 * i as f64,
        );
    }
    out.push_str("</g>");
    out
}

/// A bar chart panel with error bars where bars carry an interval.
pub fn bar_chart(title: &str, y_label: &str, bars: &[Bar]) -> String {
    let top = bars
        .iter()
        .map(|b| b.interval.map_or(b.value, |(_, hi)| hi.max(b.value)))
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max);
    let y_max = nice_max(top);
    let (w, h) = (WIDTH - LEFT - RIGHT, PANEL_HEIGHT - TOP - BOTTOM);
    let mut out = String::from("<g class=\"panel bar-chart\">");
    frame(&mut out, title, "", y_label, y_max);
    let slot = w / bars.len().max(1) as f64;
    let y_of = |v: f64| TOP + h - (v.max(0.0) / y_max).min(1.0) * h;
    for (i, b) in bars.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let bw = (slot * 0.7).min(110.0);
        let x = LEFT + slot * i as f64 + (slot - bw) / 2.0;
        let name = escape(&b.label);
        let y = y_of(b.value);
        let _ = write!(
            out,
            r#"<g data-series="{name}"><title>{name}: {}</title><rect x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{:.1}" fill="{colour}"/>"#,
            fmt_num(b.value),
            TOP + h - y
        );
        if let Some((lo, hi)) = b.interval {
            let cx = x + bw / 2.0;
            let (ylo, yhi) = (y_of(lo), y_of(hi));
            let _ = write!(
                out,
                r##"<g class="error-bar" data-low="{lo}" data-high="{hi}"><line x1="{cx:.1}" y1="{ylo:.1}" x2="{cx:.1}" y2="{yhi:.1}" stroke="#000" stroke-width="1.5"/><line x1="{:.1}" y1="{ylo:.1}" x2="{:.1}" y2="{ylo:.1}" stroke="#000"/><line x1="{:.1}" y1="{yhi:.1}" x2="{:.1}" y2="{yhi:.1}" stroke="#000"/></g>"##,
                cx - 6.0,
                cx + 6.0,
                cx - 6.0,
                cx + 6.0
            );
        }
        let label: String = b.label.chars().take(18).collect();
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text></g>"#,
            x + bw / 2.0,
            TOP + h + 14.0,
            escape(&label)
        );
    }
    out.push_str("</g>");
    out
}

/// A self-contained SVG document stacking `panels` vertically, with a caption line.
pub fn document(caption: &str, panels: &[String]) -> String {
    let height = PANEL_HEIGHT * panels.len() as f64 + 30.0;
    let mut out = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif"><rect width="100%" height="100%" fill="#fff"/><text x="10" y="{:.0}" font-size="11" fill="#555">{}</text>"##,
        height - 10.0,
        escape(caption)
    );
    for (i, p) in panels.iter().enumerate() {
        let _ = write!(
            out,
            r#"<g transform="translate(0,{:.0})">{p}</g>"#,
            PANEL_HEIGHT * i as f64
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_max_rounds_up_to_1_2_2_5_5_10() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(17.0), 20.0);
        assert_eq!(nice_max(21.0), 25.0);
        assert_eq!(nice_max(0.3), 0.5);
        assert_eq!(nice_max(100.0), 100.0);
    }

    #[test]
    fn escaping_covers_markup() {
        assert_eq!(escape("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }
}
