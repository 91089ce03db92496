//! Pieces the pages share: SVG chart helpers, table downloads, the persona meter, URL query helpers.

pub mod charts;
pub mod download;
pub mod persona_meter;

/// Percent-encodes a URL query value or a data-URL payload: everything but unreserved characters.
pub fn encode_uri_component(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `path?key=value&...` from the pairs that have a value (values encoded).
pub fn url_with_query(path: &str, pairs: &[(&str, Option<String>)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter_map(|(key, value)| Some(format!("{key}={}", encode_uri_component(value.as_deref()?))))
        .collect();
    if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

/// A number with a fixed count of decimals, or a dash when there is none.
pub fn format_number(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "–".to_string(), |value| format!("{value:.decimals$}"))
}
