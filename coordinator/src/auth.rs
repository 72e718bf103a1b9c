//! Bearer-token authentication of API calls.

use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Checks `authorization: Bearer TOKEN` against the configured tokens.
///
/// Tokens are compared as SHA-256 digests in constant time, so neither the
/// comparison time nor the digest length reveals anything about a token.
#[derive(Clone)]
pub struct BearerAuth {
    /// Digests of the accepted tokens; `None` turns authentication off.
    token_digests: Option<Arc<Vec<[u8; 32]>>>,
}

impl BearerAuth {
    /// Accepts any of `tokens`.
    pub fn tokens(tokens: &[String]) -> Self {
        let digests = tokens.iter().map(|token| digest(token.as_bytes())).collect();
        BearerAuth { token_digests: Some(Arc::new(digests)) }
    }

    /// Accepts every call.
    pub fn disabled() -> Self {
        BearerAuth { token_digests: None }
    }

    fn check(&self, header: Option<&[u8]>) -> Result<(), Status> {
        let Some(digests) = &self.token_digests else { return Ok(()) };
        let Some(header) = header else {
            return Err(Status::unauthenticated("missing bearer token in the `authorization` metadata"));
        };
        let Some(token) = header.strip_prefix(b"Bearer ") else {
            return Err(Status::unauthenticated("invalid `authorization` metadata; expected `Bearer TOKEN`"));
        };
        let presented = digest(token.trim_ascii());
        let mut matched = subtle::Choice::from(0);
        for accepted in digests.iter() {
            matched |= accepted.ct_eq(&presented);
        }
        if bool::from(matched) { Ok(()) } else { Err(Status::unauthenticated("invalid bearer token")) }
    }
}

impl Interceptor for BearerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let header = request.metadata().get("authorization").map(|value| value.as_bytes());
        self.check(header)?;
        Ok(request)
    }
}

fn digest(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// Reads tokens from a file with one token per line; blank lines and lines
/// starting with `#` are skipped.
pub fn parse_token_file(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_configured_token() {
        let auth = BearerAuth::tokens(&["s3cret".to_owned(), "other".to_owned()]);
        assert!(auth.check(Some(b"Bearer s3cret")).is_ok());
        assert!(auth.check(Some(b"Bearer other")).is_ok());
    }

    #[test]
    fn rejects_missing_and_wrong_tokens() {
        let auth = BearerAuth::tokens(&["s3cret".to_owned()]);
        let missing = auth.check(None).unwrap_err();
        assert_eq!(missing.code(), tonic::Code::Unauthenticated);
        assert!(missing.message().starts_with("missing bearer token"), "{}", missing.message());
        assert_eq!(auth.check(Some(b"Bearer s3cre")).unwrap_err().message(), "invalid bearer token");
        assert!(auth.check(Some(b"Basic s3cret")).unwrap_err().message().contains("expected `Bearer TOKEN`"));
    }

    #[test]
    fn disabled_accepts_all() {
        assert!(BearerAuth::disabled().check(None).is_ok());
    }

    #[test]
    fn token_file_skips_comments() {
        let text = "# tokens\n\n  alpha  \nbeta\n#gamma\n";
        assert_eq!(parse_token_file(text), ["alpha", "beta"]);
    }
}
