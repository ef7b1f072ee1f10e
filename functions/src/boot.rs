//! Start-up shared by every binary: logging, settings, AWS clients, built once per cold start;
//! then each invocation: the API Gateway event made a request, the handler run under a deadline,
//! its response put in API Gateway's shape.

use std::convert::Infallible;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse_core::services::ServiceError;
use gatehouse_core::App;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_http::http::{header, HeaderMap, HeaderValue};
use lambda_http::request::LambdaRequest;
use lambda_http::{service_fn, Body, LambdaEvent, Request, RequestExt, Response};

use crate::http::{self, Reject};

/// Time kept back from the invocation's deadline to answer after the handler is given up: the
/// 503 must reach API Gateway before Lambda ends the invocation, or the caller gets API Gateway's
/// own bare 5xx instead of ours with `Retry-After`.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// JSON logs (CloudWatch-friendly) on standard output, level from `RUST_LOG` (default `info`).
/// Never request bodies.
pub fn init_tracing() {
    let filter = std::env::var("RUST_LOG").ok().and_then(|v| log_filter(&v)).unwrap_or_else(|| {
        tracing_subscriber::filter::Targets::new().with_default(tracing_subscriber::filter::LevelFilter::INFO)
    });
    let _ = tracing_subscriber::util::SubscriberInitExt::try_init(log_subscriber(filter, std::io::stdout));
}

/// `RUST_LOG` read as a list of `level` and `target=level` directives (`info`,
/// `warn,gatehouse_core=debug`), as EnvFilter reads them: a target matches the targets it begins,
/// empty directives are skipped, and none at all logs nothing. `None` when a directive is not one
/// of those (EnvFilter's span and field directives included): the caller then logs at `info`.
/// Targets, not EnvFilter, so that the binaries do not carry EnvFilter's regex engine
/// (regex-automata, regex-syntax): its tables and panic locations are pointers the dynamic loader
/// relocates at every cold start.
pub fn log_filter(spec: &str) -> Option<tracing_subscriber::filter::Targets> {
    let directives: Vec<&str> = spec.split(',').filter(|d| !d.is_empty()).collect();
    if directives.is_empty() {
        return Some(tracing_subscriber::filter::Targets::new());
    }
    if directives.iter().any(|d| d.contains('[')) {
        return None; // a span or field directive, which Targets would take for a target's name
    }
    directives.join(",").parse().ok()
}

/// The subscriber every function logs through: one JSON object a line, filtered by `filter` (a
/// [`log_filter`], or any filtering layer: the tests use EnvFilter), written to `writer` (standard
/// output when deployed; a buffer in the tests that read the logs).
///
/// Whatever `filter` allows, the TRACE events of other crates are dropped: at that level
/// lambda_runtime logs each raw invocation event (request bodies with their passwords, the
/// `Authorization` header) and the AWS SDK each DynamoDB response body (password hashes, code
/// MACs). Our own crates log nothing at TRACE. (Release builds leave TRACE out of every crate at
/// compile time: functions/Cargo.toml.)
pub fn log_subscriber<F, W>(filter: F, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    F: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    let no_foreign_trace = tracing_subscriber::filter::filter_fn(|meta| {
        *meta.level() < tracing::Level::TRACE || meta.target().starts_with("gatehouse")
    });
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .with_writer(writer);
    tracing_subscriber::registry().with(filter).with(no_foreign_trace).with(json)
}

/// Runs one handler as a Lambda function behind an HTTP API (payload format 2.0). A
/// configuration error ends the cold start with one line naming the variable.
pub async fn run<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Arc<App>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    init_tracing();
    let app = match gatehouse_core::aws::app_from_env().await {
        Ok(app) => Arc::new(app),
        Err(e) => {
            tracing::error!(outcome = "config_error", "{e}");
            return Err(e.into());
        }
    };
    let handler = Arc::new(handler);
    lambda_http::lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayV2httpRequest>| {
        let (app, handler) = (app.clone(), handler.clone());
        async move {
            let LambdaEvent { payload, context } = event;
            let budget = budget(context.deadline, SystemTime::now());
            let response = invoke(payload, budget, |req| handler(app, req.with_lambda_context(context))).await;
            Ok::<_, Infallible>(response)
        }
    }))
    .await
}

/// How long the handler may take: until `DEADLINE_MARGIN` before the invocation's deadline (unix
/// milliseconds; 0 when there is none, as in tests and `cargo lambda invoke` without one).
pub fn budget(deadline_ms: u64, now: SystemTime) -> Option<Duration> {
    if deadline_ms == 0 {
        return None;
    }
    let now_ms = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    let left = u128::from(deadline_ms).saturating_sub(now_ms);
    let left = Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX));
    Some(left.saturating_sub(DEADLINE_MARGIN))
}

/// One invocation: the event becomes a request (or a 400 when it cannot be one), the handler
/// answers within `budget` (or the caller gets a 503 with `Retry-After`), and the response takes
/// API Gateway's v2 shape.
pub async fn invoke<H, Fut>(
    event: ApiGatewayV2httpRequest,
    budget: Option<Duration>,
    handler: H,
) -> ApiGatewayV2httpResponse
where
    H: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response<Body>>,
{
    let response = match request(event) {
        Err(reject) => reject.response(),
        Ok(req) => match budget {
            None => handler(req).await,
            Some(budget) => match tokio::time::timeout(budget, handler(req)).await {
                Ok(response) => response,
                Err(_) => {
                    // Whatever the handler was waiting for is abandoned. Every write it may have
                    // made is a single item or a transaction, applied whole or not at all.
                    http::error(&ServiceError::Unavailable(format!("no answer within {} ms", budget.as_millis())))
                }
            },
        },
    };
    v2_response(response)
}

/// The request an API Gateway v2 event describes, or why it cannot be one. lambda_http's own
/// conversion panics (and with `panic = "abort"` kills the container) on what the `http` crate
/// refuses in a URI, such as a raw `"`, `<`, `>` or space in the query string, which API Gateway
/// passes through as the client sent it; such requests are answered 400 here instead.
pub fn request(mut event: ApiGatewayV2httpRequest) -> Result<Request, Reject> {
    if let Some(query) = event.raw_query_string.as_deref().filter(|q| !q.is_empty()) {
        if lambda_http::http::uri::PathAndQuery::from_str(&format!("/?{query}")).is_err() {
            return Err(Reject::Parse("Malformed query string.".into()));
        }
    }
    if event.is_base64_encoded {
        use base64::Engine;
        let body = event.body.as_deref().unwrap_or_default();
        if base64::engine::general_purpose::STANDARD.decode(body).is_err() {
            return Err(Reject::Parse("Malformed request body.".into()));
        }
    }
    // The URI is built from the scheme (x-forwarded-proto), the Host header and the path; a value
    // that does not make a URL would panic. API Gateway sets both headers; anything odd falls
    // back to https and the API's own domain name.
    let scheme_ok = matches!(header_str(&event.headers, "x-forwarded-proto"), None | Some("https" | "http"));
    if !scheme_ok {
        event.headers.remove("x-forwarded-proto");
    }
    let host_ok = |h: &str| url::Url::parse(&format!("https://{h}/")).is_ok_and(|u| u.host().is_some());
    if header_str(&event.headers, "host").is_some_and(|h| !host_ok(h)) {
        event.headers.remove(header::HOST);
    }
    if event.request_context.domain_name.as_deref().is_some_and(|h| !host_ok(h)) {
        event.request_context.domain_name = None;
    }
    if header_str(&event.headers, "host").is_none() && event.request_context.domain_name.is_none() {
        event.headers.insert(header::HOST, HeaderValue::from_static("localhost"));
    }
    if event.raw_path.as_deref().is_none_or(|p| !p.starts_with('/')) {
        return Err(Reject::Parse("Malformed request path.".into()));
    }
    Ok(LambdaRequest::ApiGatewayV2(event).into())
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{0}"))
}

/// A response in API Gateway's payload format 2.0 (as lambda_http shapes it: cookies apart,
/// binary bodies base64-encoded).
pub fn v2_response(response: Response<Body>) -> ApiGatewayV2httpResponse {
    let (parts, body) = response.into_parts();
    let mut headers = parts.headers;
    let cookies =
        headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
    headers.remove(header::SET_COOKIE);
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    out.is_base64_encoded = matches!(body, Body::Binary(_));
    out.body = match body {
        Body::Empty => None,
        b => Some(b),
    };
    out.headers = headers;
    out.cookies = cookies;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_ends_a_margin_before_the_deadline() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let ms = |d: Duration| u64::try_from((now + d).duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap();
        assert_eq!(budget(0, now), None, "no deadline, no budget");
        assert_eq!(budget(ms(Duration::from_secs(10)), now), Some(Duration::from_millis(9_500)));
        assert_eq!(budget(ms(Duration::from_millis(300)), now), Some(Duration::ZERO));
        assert_eq!(budget(ms(Duration::ZERO) - 5_000, now), Some(Duration::ZERO), "past deadlines");
    }

    #[test]
    fn rust_log_is_read_as_env_filter_reads_levels_and_targets() {
        use tracing::Level;
        let on = |spec: &str, target: &str, level: Level| log_filter(spec).map(|f| f.would_enable(target, &level));
        assert_eq!(on("info", "gatehouse_core::services", Level::INFO), Some(true));
        assert_eq!(on("info", "aws_smithy_runtime::client", Level::DEBUG), Some(false));
        assert_eq!(on("DEBUG", "h2::proto", Level::DEBUG), Some(true), "levels in any case");
        let mixed = "warn,gatehouse_core=debug";
        assert_eq!(on(mixed, "gatehouse_core::services::login", Level::DEBUG), Some(true), "a target's prefix");
        assert_eq!(on(mixed, "aws_config", Level::INFO), Some(false));
        assert_eq!(on(mixed, "aws_config", Level::WARN), Some(true));
        assert_eq!(on("gatehouse_core=debug", "aws_config", Level::ERROR), Some(false), "no level: other targets off");
        assert_eq!(on("info,", "x", Level::INFO), Some(true), "empty directives skipped");
        assert_eq!(on("", "x", Level::ERROR), Some(false), "nothing at all: nothing logged");
        assert_eq!(on("off", "x", Level::ERROR), Some(false));
        assert!(log_filter("[request]=debug").is_none(), "span directives: the caller falls back to info");
        assert!(log_filter("gatehouse_core[{user}]=debug").is_none(), "field directives too");
        assert!(
            log_filter("info,loud").is_some_and(|f| f.would_enable("loud", &Level::TRACE)),
            "a bare target: all of it"
        );
    }
}
