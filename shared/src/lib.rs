//! The domain and API types of CultureSPA Studio. serde only, so that it compiles to wasm.
//!
//! The data path reads left to right: question → answer → instance → review → adapter → evaluation.

pub mod analysis;
pub mod api;
pub mod auth;
mod domain;
mod models;
pub mod review;
mod run;

pub use domain::*;
pub use models::*;
pub use run::*;
