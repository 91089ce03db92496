//! Access to the backend's JSON API (same origin, under `/api`).

use serde::de::DeserializeOwned;
use shared::api::ErrorBody;

/// GETs `/api{path}` and decodes the JSON body; an API error becomes its message.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    send::<(), T>(gloo_net::http::Method::GET, path, None).await
}

/// Sends a JSON body (or none) with `method` to `/api{path}` and decodes the JSON reply; an API
/// error becomes its message. The session cookie goes along (same origin).
pub async fn send<B: serde::Serialize, T: DeserializeOwned>(
    method: gloo_net::http::Method,
    path: &str,
    body: Option<&B>,
) -> Result<T, String> {
    let url = format!("/api{path}");
    let builder = gloo_net::http::RequestBuilder::new(&url).method(method);
    let request = match body {
        Some(body) => builder.json(body).map_err(|error| format!("{url}: {error}"))?,
        None => builder.build().map_err(|error| format!("{url}: {error}"))?,
    };
    let response = request.send().await.map_err(|error| format!("{url}: {error}"))?;
    if !response.ok() {
        let status = response.status();
        return Err(match response.json::<ErrorBody>().await {
            Ok(body) => body.message,
            Err(_) => format!("{url}: HTTP {status}"),
        });
    }
    response.json::<T>().await.map_err(|error| format!("{url}: {error}"))
}
