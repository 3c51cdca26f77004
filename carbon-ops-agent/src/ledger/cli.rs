//! `carbon-ops ledger …`: verify, append and show a ledger file from scripts.
//!
//! The lead wires [`LedgerCommand`] into the `carbon-ops` binary as the `ledger` subcommand
//! and exits with the code [`run`] returns: `verify` gives 0 when intact and 1 (after listing
//! every break) otherwise; `append` writes locally and refuses while the agent holds the lock.

use super::chain::is_hash_hex;
use super::checkpoint::{CheckpointSigner, CheckpointVerifier};
use super::files::{VerifyOptions, verify_ledger};
use super::segments::{list_segments, segment_path};
use super::store::StoreOptions;
use super::verify::HeadExpectation;
use super::writer::LedgerWriter;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

/// The `ledger` subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum LedgerCommand {
    /// Verify a ledger: exit 0 when intact, 1 listing every break.
    Verify(VerifyArgs),
    /// Append one entry to a local ledger file (not while the agent has it open).
    Append(AppendArgs),
    /// Print a ledger's entries.
    Show(ShowArgs),
    /// Append an Ed25519-signed checkpoint of the current last entry.
    Checkpoint(CheckpointArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct CheckpointArgs {
    /// Ledger base path.
    pub path: PathBuf,
    /// File holding the 32-byte Ed25519 secret seed as 64 hex digits.
    #[arg(long)]
    pub key_file: PathBuf,
}

#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// Ledger base path (segment 0; later segments `PATH.000001`… are found beside it).
    pub path: PathBuf,
    /// A head recorded elsewhere that the ledger must still contain: `HASH` or `SEQ:HASH`.
    #[arg(long, value_name = "HASH")]
    pub expect_head: Option<String>,
    /// Ed25519 public key (64 hex digits) that checkpoint entries must verify with; repeatable.
    #[arg(long = "public-key", value_name = "HEX")]
    pub public_keys: Vec<String>,
    /// Do not compare against `PATH.head` (for copies made without it).
    #[arg(long)]
    pub no_head_file: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, clap::Args)]
pub struct AppendArgs {
    /// Ledger base path (created with a genesis entry if absent).
    pub path: PathBuf,
    /// Entry kind: 1-64 characters of [A-Za-z0-9_.:-]; `genesis` is reserved.
    #[arg(long)]
    pub kind: String,
    /// Entry payload: a JSON object.
    #[arg(long)]
    pub payload: String,
    /// Segment size limit in bytes before rotation.
    #[arg(long, default_value_t = super::store::DEFAULT_MAX_SEGMENT_BYTES)]
    pub max_segment_bytes: u64,
}

#[derive(Debug, Clone, clap::Args)]
pub struct ShowArgs {
    /// Ledger base path.
    pub path: PathBuf,
    /// Print the stored lines (canonical JSON) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `ledger` subcommand, printing to stdout; returns the process exit code.
pub fn run(cmd: LedgerCommand) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    run_to(cmd, &mut out)
}

/// Runs a `ledger` subcommand, printing to `out`; returns the process exit code.
pub fn run_to(cmd: LedgerCommand, out: &mut dyn Write) -> anyhow::Result<i32> {
    match cmd {
        LedgerCommand::Verify(args) => verify(&args, out),
        LedgerCommand::Append(args) => append(&args, out),
        LedgerCommand::Show(args) => show(&args, out),
        LedgerCommand::Checkpoint(args) => checkpoint(&args, out),
    }
}

/// Parses `--expect-head`: `HASH` or `SEQ:HASH`.
pub fn parse_expect_head(text: &str) -> anyhow::Result<HeadExpectation> {
    let (seq, hash) = match text.split_once(':') {
        Some((seq, hash)) => (
            Some(
                seq.parse::<u64>()
                    .context("SEQ in SEQ:HASH must be an integer")?,
            ),
            hash,
        ),
        None => (None, text),
    };
    if !is_hash_hex(hash) {
        bail!("--expect-head needs 64 lowercase hex digits (optionally SEQ:HASH), got {hash:?}");
    }
    Ok(HeadExpectation {
        source: "--expect-head".into(),
        seq,
        hash: hash.to_owned(),
    })
}

fn verify(args: &VerifyArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let expect_head = args
        .expect_head
        .as_deref()
        .map(parse_expect_head)
        .transpose()?;
    let checkpoint_keys = args
        .public_keys
        .iter()
        .map(|k| CheckpointVerifier::from_public_hex(k))
        .collect::<Result<Vec<_>, _>>()?;
    let options = VerifyOptions {
        checkpoint_keys,
        expect_head,
        use_head_file: !args.no_head_file,
        ..VerifyOptions::default()
    };
    let report = verify_ledger(&args.path, &options);
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        if let Some(map) = value.as_object_mut() {
            map.insert("intact".into(), Value::Bool(report.is_intact()));
        }
        writeln!(out, "{value}")?;
    } else if report.is_intact() {
        let head = report.head.as_ref().map_or_else(String::new, |h| {
            format!(", head seq {} hash {}", h.seq, h.hash)
        });
        writeln!(
            out,
            "{}: intact, {} entries in {} segment(s){head}",
            args.path.display(),
            report.entries,
            report.segments
        )?;
    } else {
        writeln!(
            out,
            "{}: {} break(s) in {} entries:",
            args.path.display(),
            report.breaks.len(),
            report.entries
        )?;
        for b in &report.breaks {
            writeln!(out, "  {b}")?;
        }
    }
    Ok(i32::from(!report.is_intact()))
}

fn append(args: &AppendArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let payload: Value =
        serde_json::from_str(&args.payload).context("--payload is not valid JSON")?;
    let options = StoreOptions {
        max_segment_bytes: args.max_segment_bytes,
        ..StoreOptions::default()
    };
    let (writer, report) = LedgerWriter::open(&args.path, options)?;
    for q in &report.quarantined {
        eprintln!(
            "warning: moved a torn last line ({} bytes) of {} to {}",
            q.bytes,
            q.segment.display(),
            q.quarantine.display()
        );
    }
    let appended = writer.handle().append(&args.kind, payload)?;
    writer.close();
    writeln!(
        out,
        "{}",
        json!({"seq": appended.seq, "hash": appended.hash})
    )?;
    Ok(0)
}

fn checkpoint(args: &CheckpointArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let seed = std::fs::read_to_string(&args.key_file)
        .with_context(|| format!("reading key file {}", args.key_file.display()))?;
    let signer = CheckpointSigner::from_seed_hex(&seed)?;
    let options = StoreOptions {
        checkpoint_signer: Some(signer),
        ..StoreOptions::default()
    };
    let (writer, _) = LedgerWriter::open(&args.path, options)?;
    let appended = writer.handle().checkpoint()?;
    writer.close();
    writeln!(
        out,
        "{}",
        json!({"seq": appended.seq, "hash": appended.hash})
    )?;
    Ok(0)
}

fn show(args: &ShowArgs, out: &mut dyn Write) -> anyhow::Result<i32> {
    let indices =
        list_segments(&args.path).with_context(|| format!("listing {}", args.path.display()))?;
    if indices.is_empty() {
        bail!("no ledger at {}", args.path.display());
    }
    for index in indices {
        let path = segment_path(&args.path, index);
        let file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        for line in BufReader::new(file).split(b'\n') {
            let line = line.with_context(|| format!("reading {}", path.display()))?;
            if args.json {
                out.write_all(&line)?;
                out.write_all(b"\n")?;
                continue;
            }
            match serde_json::from_slice::<Value>(&line) {
                Ok(e) => writeln!(
                    out,
                    "{:>8}  {}  {:<12}  {}",
                    e["seq"],
                    e["ts"].as_str().unwrap_or("?"),
                    e["kind"].as_str().unwrap_or("?"),
                    e["payload"]
                )?,
                Err(_) => writeln!(out, "       ?  (unparseable line: {} bytes)", line.len())?,
            }
        }
    }
    Ok(0)
}
