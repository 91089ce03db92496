//! Login attempts held to a rate: after [`MAX_FAILURES`] wrong passwords within [`WINDOW`] for a
//! user name (or [`MAX_FAILURES_PER_ADDRESS`] from an address), further logins for it are refused
//! (429) until the window has passed; a successful login clears its user's count.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;

use super::AppError;

pub const MAX_FAILURES: u32 = 10;
/// An address may be shared (a proxy, an office): it gets more failures before it waits, so one
/// guesser there cannot lock everyone out at once.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 100;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Counters kept at most; the oldest go first (a flood of names cannot grow the map for ever).
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct LoginLimits {
    /// Failures and when the first of the window happened, per `user:NAME` / `addr:IP`.
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

/// The keys a login attempt counts against.
pub fn login_keys(username: &str, address: Option<IpAddr>) -> Vec<String> {
    let mut keys = vec![format!("user:{}", username.trim().to_lowercase())];
    keys.extend(address.map(|address| format!("addr:{address}")));
    keys
}

impl LoginLimits {
    /// Refuses when any key has used up its failures in the current window.
    pub fn check(&self, keys: &[String]) -> Result<(), AppError> {
        let Ok(mut failures) = self.failures.lock() else { return Ok(()) };
        let now = Instant::now();
        failures.retain(|_, (_, since)| now.duration_since(*since) < WINDOW);
        let limit = |key: &str| if key.starts_with("addr:") { MAX_FAILURES_PER_ADDRESS } else { MAX_FAILURES };
        if keys.iter().any(|key| failures.get(key).is_some_and(|(count, _)| *count >= limit(key))) {
            return Err(AppError::TooManyRequests(format!(
                "too many failed logins; try again in {} minutes",
                WINDOW.as_secs() / 60
            )));
        }
        Ok(())
    }

    pub fn failed(&self, keys: &[String]) {
        let Ok(mut failures) = self.failures.lock() else { return };
        let now = Instant::now();
        if failures.len() >= MAX_ENTRIES {
            if let Some(oldest) = failures.iter().min_by_key(|(_, (_, since))| *since).map(|(key, _)| key.clone()) {
                failures.remove(&oldest);
            }
        }
        for key in keys {
            failures.entry(key.clone()).or_insert((0, now)).0 += 1;
        }
    }

    pub fn succeeded(&self, keys: &[String]) {
        if let Ok(mut failures) = self.failures.lock() {
            keys.iter().filter(|key| key.starts_with("user:")).for_each(|key| {
                failures.remove(key);
            });
        }
    }
}

/// The client's address when the server knows it (served with connect info; tests have none).
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip())))
    }
}
