//! What every response carries and every request is held to: security headers, a body limit.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{HeaderName, HeaderValue, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::http::header::{HOST, ORIGIN, X_FRAME_OPTIONS};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::content_security::ContentSecurity;
use super::AppError;

/// The largest request body the API reads (run configurations, reviews and logins are small).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// Adds the security headers to a response that does not set them itself; the
/// Content-Security-Policy is the server's (`content_security.rs`).
pub async fn security_headers(State(security): State<Arc<ContentSecurity>>, mut response: Response) -> Response {
    let headers = response.headers_mut();
    let defaults: [(HeaderName, &'static str); 3] =
        [(X_CONTENT_TYPE_OPTIONS, "nosniff"), (X_FRAME_OPTIONS, "DENY"), (REFERRER_POLICY, "same-origin")];
    for (name, value) in defaults {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
    if !headers.contains_key(CONTENT_SECURITY_POLICY) {
        headers.insert(CONTENT_SECURITY_POLICY, security.header());
    }
    response
}

/// A request that changes something, sent by a browser, must come from this server's own pages:
/// its `Origin` (browsers send one with every such request) names the host it was sent to.
/// Scripts and the command line send none and pass; so do reads.
pub async fn same_origin(request: Request, next: Next) -> Response {
    let reads = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if let (false, Some(origin)) = (reads, request.headers().get(ORIGIN)) {
        let origin_host = origin.to_str().ok().and_then(|origin| origin.split_once("://")).map(|(_, host)| host);
        // Behind a proxy the host the browser asked for is the forwarded one.
        let host = |name| request.headers().get(name).and_then(|host: &HeaderValue| host.to_str().ok());
        let hosts = [host(HOST), host(HeaderName::from_static("x-forwarded-host"))];
        if origin_host.is_none() || !hosts.contains(&origin_host) {
            let message = format!(
                "a request from another site ({}) may not change anything here",
                origin.to_str().unwrap_or("an unreadable origin")
            );
            return AppError::Forbidden(message).into_response();
        }
    }
    next.run(request).await
}
