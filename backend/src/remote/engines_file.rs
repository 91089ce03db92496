//! The remote engines a server offers in its run form, from a TOML file (`serve --engines FILE`):
//!
//! ```toml
//! [[engine]]
//! name = "llama3-8b on the GPU box"
//! url = "http://gpu-box:8000/v1"
//! model = "meta-llama/Meta-Llama-3-8B-Instruct"
//! api_key_env = "VLLM_API_KEY"     # optional: the variable that holds the key
//! max_in_flight = 64               # optional
//! ```

use std::path::Path;

use serde::Deserialize;
use shared::{RemoteEngineConfig, RemoteEngineListing};

use super::checked_base_url;

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct EnginesFileError {
    pub file: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnginesFile {
    #[serde(default)]
    engine: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    url: String,
    model: String,
    api_key_env: Option<String>,
    template: Option<String>,
    max_in_flight: Option<u32>,
}

/// Reads and checks an engines file: names unique and non-empty, URLs usable.
pub fn read_engines_file(file: &Path) -> Result<Vec<RemoteEngineListing>, EnginesFileError> {
    let fail = |message: String| EnginesFileError { file: file.display().to_string(), message };
    let text = std::fs::read_to_string(file).map_err(|error| fail(error.to_string()))?;
    let parsed: EnginesFile = toml::from_str(&text).map_err(|error| fail(error.to_string()))?;
    let mut listings: Vec<RemoteEngineListing> = Vec::new();
    for (index, entry) in parsed.engine.into_iter().enumerate() {
        let field = |name: &str| format!("engine[{index}].{name}");
        if entry.name.trim().is_empty() || entry.name.len() > 100 {
            return Err(fail(format!("{}: 1 to 100 characters", field("name"))));
        }
        if listings.iter().any(|listing| listing.name == entry.name) {
            return Err(fail(format!("{}: '{}' is named twice", field("name"), entry.name)));
        }
        let engine = RemoteEngineConfig {
            url: entry.url,
            model: entry.model,
            api_key_env: entry.api_key_env,
            template: entry.template,
            max_in_flight: entry.max_in_flight,
        };
        checked_base_url(&engine.url).map_err(|error| fail(format!("{}: {error}", field("url"))))?;
        if engine.model.trim().is_empty() {
            return Err(fail(format!("{}: name the model the server serves", field("model"))));
        }
        listings.push(RemoteEngineListing { name: entry.name, engine });
    }
    Ok(listings)
}
