//! The domain the request being served came to, for settings that default to "the API's own
//! domain" (`FRONTEND_DOMAIN` unset: emailed links and passkeys on the account pages the API
//! serves itself). API Gateway reports it in `requestContext.domainName`: one of the API's own
//! domains (its execute-api domain or a custom domain mapped to it), never a client's `Host`.

use std::future::Future;

tokio::task_local! {
    static API_DOMAIN: Option<String>;
}

/// Runs `fut` (one request) with the domain it came to.
pub async fn within<F: Future>(domain: Option<String>, fut: F) -> F::Output {
    API_DOMAIN.scope(domain.filter(|d| is_domain(d)), fut).await
}

/// The domain the request being served came to (host, and port when not the default).
pub fn api_domain() -> Option<String> {
    API_DOMAIN.try_with(Clone::clone).ok().flatten()
}

/// A host name with an optional port: nothing that could break out of a URL.
fn is_domain(d: &str) -> bool {
    !d.is_empty() && d.len() <= 253 && d.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_host_names_are_kept() {
        assert_eq!(
            within(Some("abc.execute-api.eu-west-1.amazonaws.com".into()), async { api_domain() }).await.as_deref(),
            Some("abc.execute-api.eu-west-1.amazonaws.com")
        );
        for bad in ["evil.com/x", "a b", "x@y", ""] {
            assert_eq!(within(Some(bad.into()), async { api_domain() }).await, None, "{bad}");
        }
        assert_eq!(api_domain(), None, "outside a request");
    }
}
