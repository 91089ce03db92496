//! Access to the backend's JSON API (same origin, under `/api`).

use gloo_net::http::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use shared::api::ErrorBody;

/// GETs `/api{path}` and decodes the JSON body; an API error becomes its message.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, String> {
    send::<(), T>(Method::GET, path, None).await
}

/// Sends a JSON body (or none) with `method` to `/api{path}` and decodes the JSON reply; an API
/// error becomes its message. The session cookie goes along (same origin).
pub async fn send<B: serde::Serialize, T: DeserializeOwned>(
    method: Method,
    path: &str,
    body: Option<&B>,
) -> Result<T, String> {
    let (url, response) = request(method, path, body).await?;
    response.json::<T>().await.map_err(|error| format!("{url}: {error}"))
}

/// Like [`send`] for an answer without a body (`204 No Content`).
pub async fn send_without_reply<B: serde::Serialize>(
    method: Method,
    path: &str,
    body: Option<&B>,
) -> Result<(), String> {
    request(method, path, body).await.map(drop)
}

/// The URL and the successful response; an API error becomes its message.
async fn request<B: serde::Serialize>(
    method: Method,
    path: &str,
    body: Option<&B>,
) -> Result<(String, Response), String> {
    let url = format!("/api{path}");
    let builder = RequestBuilder::new(&url).method(method);
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
    Ok((url, response))
}
