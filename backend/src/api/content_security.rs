//! The Content-Security-Policy: scripts only from this origin, plus the inline loader that Trunk
//! writes into `index.html`, allowed by its SHA-256 hash (read from the served file, and read
//! again when the file changes, so a rebuilt frontend keeps working without a restart).

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use axum::http::HeaderValue;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Everything but scripts: this origin only, no framing, no plugins, forms and base URL here.
/// Styles may be inline (a few computed `style` attributes); WebAssembly needs `wasm-unsafe-eval`.
const FIXED_DIRECTIVES: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
     connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'; form-action 'self'";

/// The policy of a server, kept in step with its `index.html`.
pub struct ContentSecurity {
    index: Option<PathBuf>,
    /// The index file's modification time and length when the policy was made, and the policy.
    cached: Mutex<Option<(Option<SystemTime>, u64, HeaderValue)>>,
}

impl ContentSecurity {
    /// The policy for the frontend in `static_dir` (none: the API alone, no inline script).
    pub fn new(static_dir: Option<&Path>) -> Self {
        ContentSecurity { index: static_dir.map(|dir| dir.join("index.html")), cached: Mutex::new(None) }
    }

    pub fn header(&self) -> HeaderValue {
        let Some(index) = &self.index else {
            return policy_header("");
        };
        let Ok(metadata) = std::fs::metadata(index) else {
            return policy_header("");
        };
        let stamp = (metadata.modified().ok(), metadata.len());
        let mut cached = self.cached.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((modified, len, header)) = cached.as_ref() {
            if (*modified, *len) == stamp {
                return header.clone();
            }
        }
        let html = std::fs::read_to_string(index).unwrap_or_default();
        let header = policy_header(&html);
        *cached = Some((stamp.0, stamp.1, header.clone()));
        header
    }
}

fn policy_header(html: &str) -> HeaderValue {
    // Base64 and the fixed directives are visible ASCII: always a valid header value.
    HeaderValue::from_str(&policy(html)).unwrap_or(HeaderValue::from_static("default-src 'self'"))
}

/// The policy for a page: its inline scripts by hash, other scripts from this origin.
pub fn policy(html: &str) -> String {
    let hashes: String = inline_scripts(html)
        .into_iter()
        .map(|script| {
            let digest = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(script.as_bytes()));
            format!(" 'sha256-{digest}'")
        })
        .collect();
    format!("{FIXED_DIRECTIVES}; script-src 'self' 'wasm-unsafe-eval'{hashes}")
}

/// The text of every `<script>` without a `src`, exactly as the browser hashes it.
fn inline_scripts(html: &str) -> Vec<&str> {
    let lower = html.to_ascii_lowercase();
    let mut scripts = Vec::new();
    let mut from = 0;
    while let Some(start) = lower[from..].find("<script").map(|at| from + at) {
        let Some(open_end) = lower[start..].find('>').map(|at| start + at) else { break };
        let Some(close) = lower[open_end..].find("</script").map(|at| open_end + at) else { break };
        if !lower[start..open_end].contains("src=") {
            scripts.push(&html[open_end + 1..close]);
        }
        from = close;
    }
    scripts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_are_allowed_by_their_hash_and_others_not_at_all() {
        let html = "<head><script type=\"module\">alert(1)</script><script src=\"/x.js\"></script>\
                    <SCRIPT>\nlet a = 2;\n</SCRIPT></head>";
        assert_eq!(inline_scripts(html), vec!["alert(1)", "\nlet a = 2;\n"]);
        let policy = policy(html);
        // sha256("alert(1)") in base64, as `openssl dgst -sha256 -binary | base64` gives it.
        assert!(policy.contains("'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"), "{policy}");
        assert_eq!(policy.matches("'sha256-").count(), 2, "{policy}");
        assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval'") && policy.contains("frame-ancestors 'none'"));
        let scripts = policy.split("; ").find(|directive| directive.starts_with("script-src")).unwrap();
        assert!(!scripts.contains("unsafe-inline"), "{scripts}");
    }

    #[test]
    fn the_policy_follows_a_rebuilt_index() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), "<script>one()</script>").unwrap();
        let security = ContentSecurity::new(Some(dir.path()));
        let first = security.header();
        std::fs::write(dir.path().join("index.html"), "<script>a_longer_two()</script>").unwrap();
        let second = security.header();
        assert_ne!(first, second);
        assert_eq!(second.to_str().unwrap(), policy("<script>a_longer_two()</script>"));
    }
}
