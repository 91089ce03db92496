//! CultureSPA Studio: culture alignment of language models, from survey questions to adapters.
//!
//! The data path: question → answer → instance → review → adapter → evaluation.

pub mod analysis;
pub mod api;
pub mod auth;
pub mod curation;
pub mod load_bench;
/// The inference engine (its own crate, so that it is optimised in test builds too).
pub use culturespa_engine as engine;
pub mod models;
pub mod pipeline;
pub mod remote;
pub mod runs;
pub mod server;
pub mod store;
pub mod survey;
