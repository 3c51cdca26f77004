//! Carbon estimation from energy: grid intensity by place and time, PUE, and an uncertainty
//! interval propagated analytically (truncated normals) or by seeded Monte Carlo.
//!
//! Pure logic (no I/O) except [`cli`], which reads a series file and prints. Layout:
//! [`region`] (the bundled intensity table and lookup), [`series`] (user time series),
//! [`span`] (integration over a span with gap policies), [`pue`], [`uncertainty`],
//! [`mod@estimate`] (the estimator and its [`Record`]), [`request`] (the socket op's request),
//! [`cli`] (`carbon-ops estimate`), [`live`] (optional live providers, the only network I/O). See `docs/carbon.md`.

pub mod cli;
pub mod error;
pub mod estimate;
pub mod live;
pub mod pue;
pub mod record;
pub mod region;
pub mod request;
pub mod series;
pub mod span;
pub mod time;
pub mod uncertainty;

pub use error::CarbonError;
pub use estimate::{EstimateInput, IntensityInput, estimate};
pub use record::Record;
pub use request::{EstimateRequest, PidEnergy, estimate_request, estimate_request_with_live};
