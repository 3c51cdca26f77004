//! `carbon-ops report LEDGER_OR_RUN_JSON --out FILE.svg|FILE.html`: reads a ledger (its
//! base path; every segment is read in order) or a `carbon-ops run` summary and writes a
//! self-contained SVG, or an HTML page embedding it. The drawing is in [`super::reportdata`].

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::{reportdata, xmlcheck};
use crate::ledger::segments::{list_segments, segment_path};

/// `carbon-ops report`.
#[derive(Clone, Debug, clap::Args)]
pub struct ReportArgs {
    /// A ledger (base path, e.g. /var/lib/carbon-ops/ledger.jsonl) or a run summary
    /// (`carbon-ops run -o run.json`).
    pub input: PathBuf,
    /// Output file: `.svg` or `.html`.
    #[arg(long)]
    pub out: PathBuf,
}

fn read_input(path: &Path) -> Result<String> {
    let mut text = std::fs::read_to_string(path)
        .with_context(|| format!("reading {} (a ledger or a run summary)", path.display()))?;
    // Later ledger segments, when this is a ledger with rotated segments.
    for k in list_segments(path).unwrap_or_default() {
        if k > 0 {
            text.push('\n');
            text += &std::fs::read_to_string(segment_path(path, k))
                .with_context(|| format!("reading ledger segment {k} of {}", path.display()))?;
        }
    }
    Ok(text)
}

/// Writes the report; returns the exit code.
pub fn run(args: &ReportArgs) -> Result<i32> {
    let data = reportdata::from_text(&read_input(&args.input)?);
    let ext = args.out.extension().and_then(|e| e.to_str()).unwrap_or("");
    let svg = reportdata::to_svg(&data);
    xmlcheck::check(&svg).context("the rendered SVG is not well-formed (a bug)")?;
    let doc = match ext {
        "svg" => svg,
        "html" | "htm" => reportdata::to_html(&data),
        _ => bail!(
            "--out must end in .svg or .html, not {}",
            args.out.display()
        ),
    };
    std::fs::write(&args.out, doc).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "wrote {} ({} zone series, {} energy bars, {} carbon bars)",
        args.out.display(),
        data.power.len(),
        data.energy.len(),
        data.carbon.len()
    );
    Ok(0)
}
