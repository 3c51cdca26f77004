//! The daemon's engine: the tick loop that joins energy and CPU accounting, the state store
//! it feeds, and the shared handle the server reads.

pub mod engine;
pub mod store;
