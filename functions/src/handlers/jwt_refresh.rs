//! `POST /auth/jwt/refresh/`

use gatehouse_core::services::refresh;
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let pair = refresh::refresh(app, &http::form(req)?).await?;
    Ok(http::json(StatusCode::OK, &http::tokens_body(&pair)))
}
