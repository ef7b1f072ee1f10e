//! The HTTPS client that talks to the providers (discovery, keys, token exchange, GitHub's API):
//! hyper over rustls with the system's roots, built on first use (as the AWS clients are), with
//! a deadline on every call and a cap on what an answer may weigh.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_rustls::ConfigBuilderExt;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// A call that did not give an answer to judge.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(pub String);

/// What a provider answered.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON, when the call succeeded (2xx).
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T, HttpError> {
        if !(200..300).contains(&self.status) {
            return Err(HttpError(format!("{what}: HTTP {}", self.status)));
        }
        serde_json::from_slice(&self.body).map_err(|e| HttpError(format!("{what}: not the JSON expected ({e})")))
    }
}

/// Longest a provider call may take (connecting included): Lambda's deadline is the function's.
const DEADLINE: Duration = Duration::from_secs(4);
/// Largest answer read (discovery documents and key sets are a few KiB).
const MAX_BODY: usize = 256 * 1024;
const USER_AGENT: &str = concat!("gatehouse/", env!("CARGO_PKG_VERSION"));

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The client, built on first use.
#[derive(Default)]
pub struct HttpClient {
    client: tokio::sync::OnceCell<HttpsClient>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient").field("built", &self.client.initialized()).finish()
    }
}

fn build() -> Result<HttpsClient, HttpError> {
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError(format!("TLS configuration: {e}")))?
        .with_native_roots()
        .map_err(|e| HttpError(format!("root certificates: {e}")))?
        .with_no_client_auth();
    // http:// only reaches this machine: every URL is checked by `config::allowed_url` first.
    let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_or_http().enable_http1().build();
    Ok(Client::builder(TokioExecutor::new()).build(https))
}

impl HttpClient {
    async fn client(&self) -> Result<&HttpsClient, HttpError> {
        self.client.get_or_try_init(|| async { build() }).await
    }

    /// GET `url` with `headers`.
    pub async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Answer, HttpError> {
        self.send("GET", url, headers, None).await
    }

    /// POST `form` (urlencoded) to `url` with `headers`.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Answer, HttpError> {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        self.send("POST", url, headers, Some(body)).await
    }

    async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        form: Option<String>,
    ) -> Result<Answer, HttpError> {
        if !super::config::allowed_url(url) {
            return Err(HttpError(format!("refused to call {url:?}: not https")));
        }
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(url)
            .header("user-agent", USER_AGENT)
            .header("accept", "application/json");
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        let body = match form {
            Some(form) => {
                request = request.header("content-type", "application/x-www-form-urlencoded");
                Full::new(Bytes::from(form))
            }
            None => Full::new(Bytes::new()),
        };
        let request = request.body(body).map_err(|e| HttpError(format!("request: {e}")))?;
        let client = self.client().await?;
        let call = async {
            let response =
                client.request(request).await.map_err(|e| HttpError(format!("{method} {}: {e}", host(url))))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_BODY)
                .collect()
                .await
                .map_err(|e| HttpError(format!("{method} {}: reading the answer: {e}", host(url))))?
                .to_bytes();
            Ok(Answer { status, body })
        };
        tokio::time::timeout(DEADLINE, call)
            .await
            .map_err(|_| HttpError(format!("{method} {}: no answer within {} s", host(url), DEADLINE.as_secs())))?
    }
}

/// The host of a URL, for errors and logs (never its query, which may carry a code).
fn host(url: &str) -> String {
    url::Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_owned)).unwrap_or_default()
}
