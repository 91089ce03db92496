//! The domain and API types of CultureSPA Studio. serde only, so that it compiles to wasm.
//!
//! The data path reads left to right: question → answer → instance → review → adapter → evaluation.

pub mod api;
mod domain;
mod run;

pub use domain::*;
pub use run::*;
