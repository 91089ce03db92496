//! Pieces the pages share, one file each: SVG charts, table downloads, the persona meter, URLs,
//! the loading view, the login form, the run picker's data, option labels and bars, review
//! status labels, a run's downloads, the reviewer's stored name.

pub mod charts;
pub mod download;
pub mod loaded;
pub mod login;
pub mod options;
pub mod persona_meter;
pub mod review_status;
pub mod reviewer;
pub mod run_files;
pub mod runs;
pub mod url;

pub use loaded::loaded;
pub use url::{encode_uri_component, query_string, url_with_query};

/// A number with a fixed count of decimals, or a dash when there is none.
pub fn format_number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".to_string(), |value| format!("{value:.decimals$}"))
}
