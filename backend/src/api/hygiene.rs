//! What every response carries and every request is held to: security headers, a body limit.

use axum::extract::Request;
use axum::http::header::{HeaderName, HeaderValue, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS};
use axum::http::header::{HOST, ORIGIN, X_FRAME_OPTIONS};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppError;

/// The largest request body the API reads (run configurations, reviews and logins are small).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// No framing (clickjacking), no other page's plugins or forms, no base-URL tricks. Scripts are
/// left to the default so that the Trunk-built loader keeps working.
const CONTENT_SECURITY: &str = "frame-ancestors 'none'; base-uri 'self'; object-src 'none'; form-action 'self'";

/// Adds the security headers to a response that does not set them itself.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let defaults: [(HeaderName, &'static str); 4] = [
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (X_FRAME_OPTIONS, "DENY"),
        (REFERRER_POLICY, "same-origin"),
        (CONTENT_SECURITY_POLICY, CONTENT_SECURITY),
    ];
    for (name, value) in defaults {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
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
