//! What users see: `carbon-ops run` (energy and carbon of one command's process tree, like
//! `perf stat`), `carbon-ops top` (a live view of host power by zone and processes by power),
//! `carbon-ops report` (self-contained SVG/HTML charts of a ledger or a run), and the pure
//! simulation behind the aliasing demo (`examples/aliasing_demo.rs`).
//!
//! Pure parts (no I/O): [`power`] (zone power from two agent snapshots), [`summary`] (the run
//! summary, its JSON shape and its table), [`svg`] (a hand-written SVG chart writer),
//! [`xmlcheck`] (a small XML well-formedness check the tests and `report` use),
//! [`reportdata`] (ledger / run JSON to chart series), [`aliasing`] (the demo's simulation).
//! I/O edges: [`run`], [`top`], [`report`]. `docs/reports.md` documents the commands and the
//! formats; `docs/aliasing.md` the demo.

pub mod aliasing;
pub mod power;
pub mod report;
pub mod reportdata;
pub mod run;
pub mod summary;
pub mod svg;
pub mod top;
pub mod xmlcheck;
