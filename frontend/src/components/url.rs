//! URLs: the one percent-encoder of the frontend, and query strings built from pairs.

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

/// `key=value&...` of the pairs whose value is not empty, values encoded.
pub fn query_string(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| format!("{key}={}", encode_uri_component(value)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_but_unreserved_characters_is_percent_encoded() {
        assert_eq!(encode_uri_component("P1+P3"), "P1%2BP3");
        assert_eq!(encode_uri_component("a b&c=d/é~_.-"), "a%20b%26c%3Dd%2F%C3%A9~_.-");
    }

    #[test]
    fn query_strings_leave_out_empty_values() {
        assert_eq!(
            query_string(&[("run", "3".into()), ("culture", String::new()), ("q", "x y".into())]),
            "run=3&q=x%20y"
        );
        let url = url_with_query("/relations", &[("source", Some("wvs".into())), ("culture", None)]);
        assert_eq!(url, "/relations?source=wvs");
        assert_eq!(url_with_query("/map", &[("culture", None)]), "/map");
    }
}
