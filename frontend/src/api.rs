//! Access to the backend's JSON API (same origin, under `/api`).

use gloo_net::http::Request;
use serde::de::DeserializeOwned;
use shared::api::ErrorBody;

/// GETs `/api{path}` and decodes the JSON body; an API error becomes its message.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    let url = format!("/api{path}");
    let response = Request::get(&url).send().await.map_err(|error| format!("{url}: {error}"))?;
    if !response.ok() {
        let status = response.status();
        return Err(match response.json::<ErrorBody>().await {
            Ok(body) => body.message,
            Err(_) => format!("{url}: HTTP {status}"),
        });
    }
    response.json::<T>().await.map_err(|error| format!("{url}: {error}"))
}
