//! Accounts and sessions: Argon2id password hashes, random session tokens stored as digests, and
//! the rules for usernames and passwords.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

/// Bytes of randomness in a session token (256 bits).
const SESSION_TOKEN_BYTES: usize = 32;
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_USERNAME_CHARS: usize = 64;
/// What every personal API token starts with, so that one pasted in the wrong place is recognised.
pub const API_TOKEN_PREFIX: &str = "csp_";
pub const MAX_API_TOKEN_NAME_CHARS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("a username is 1 to {MAX_USERNAME_CHARS} letters, digits, '.', '_' or '-'")]
    InvalidUsername,
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters")]
    PasswordTooShort,
    #[error("a token name is 1 to {MAX_API_TOKEN_NAME_CHARS} characters, none of them control characters")]
    InvalidTokenName,
    #[error("hashing the password: {0}")]
    Hash(argon2::password_hash::Error),
}

pub fn validate_username(username: &str) -> Result<(), AuthError> {
    let allowed = |character: char| character.is_ascii_alphanumeric() || matches!(character, '.' | '_' | '-');
    if username.is_empty() || username.chars().count() > MAX_USERNAME_CHARS || !username.chars().all(allowed) {
        return Err(AuthError::InvalidUsername);
    }
    Ok(())
}

/// The Argon2id (default parameters) PHC string of `password`, with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::PasswordTooShort);
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default().hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string()).map_err(AuthError::Hash)
}

/// Whether `password` matches the PHC string `password_hash`; a malformed hash matches nothing.
pub fn verify_password(password: &str, password_hash: &str) -> bool {
    PasswordHash::new(password_hash)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A fresh session token (hex) for the cookie.
pub fn new_session_token() -> String {
    let mut bytes = [0u8; SESSION_TOKEN_BYTES];
    OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// A fresh personal API token: the prefix and 256 random bits (hex).
pub fn new_api_token() -> String {
    format!("{API_TOKEN_PREFIX}{}", new_session_token())
}

/// The trimmed name of a new API token.
pub fn validate_token_name(name: &str) -> Result<&str, AuthError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_API_TOKEN_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(AuthError::InvalidTokenName);
    }
    Ok(name)
}

/// What the store keeps of a session or API token: its SHA-256 digest (hex).
pub fn token_digest(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_against_their_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsE", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(matches!(hash_password("short"), Err(AuthError::PasswordTooShort)));
    }

    #[test]
    fn tokens_are_random_and_stored_as_digests() {
        let token = new_session_token();
        assert_eq!(token.len(), 2 * SESSION_TOKEN_BYTES);
        assert_ne!(token, new_session_token());
        assert_eq!(
            token_digest("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" // FIPS 180-2 example
        );
    }

    #[test]
    fn api_tokens_are_prefixed_and_named_plainly() {
        let token = new_api_token();
        assert!(token.starts_with(API_TOKEN_PREFIX) && token.len() == API_TOKEN_PREFIX.len() + 2 * SESSION_TOKEN_BYTES);
        assert_eq!(validate_token_name("  table script ").unwrap(), "table script");
        for bad in ["", "  ", "a\nb", &"x".repeat(MAX_API_TOKEN_NAME_CHARS + 1)] {
            assert!(validate_token_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn usernames_are_plain() {
        assert!(validate_username("ann.lee-2").is_ok());
        for bad in ["", "a b", "ann;", &"x".repeat(MAX_USERNAME_CHARS + 1)] {
            assert!(validate_username(bad).is_err(), "{bad}");
        }
    }
}
