pub mod cultures;
pub mod questions;
