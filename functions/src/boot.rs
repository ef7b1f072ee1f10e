//! Start-up shared by every binary: logging, settings, AWS clients, built once per cold start.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use gatehouse_core::App;
use lambda_http::{service_fn, Body, Request, Response};

/// JSON logs (CloudWatch-friendly), level from `RUST_LOG` (default `info`). Never request bodies.
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Runs one handler as a Lambda function. A configuration error ends the cold start with one
/// line naming the variable.
pub async fn run<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Arc<App>, Request) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    init_tracing();
    let app = match gatehouse_core::app_from_env().await {
        Ok(app) => Arc::new(app),
        Err(e) => {
            tracing::error!(outcome = "config_error", "{e}");
            return Err(e.into());
        }
    };
    let handler = Arc::new(handler);
    lambda_http::run(service_fn(move |req: Request| {
        let fut = handler(app.clone(), req);
        async move { Ok::<_, Infallible>(fut.await) }
    }))
    .await
}
