//! Carbon estimation from energy: grid intensity, PUE and uncertainty.
pub mod uncertainty;
