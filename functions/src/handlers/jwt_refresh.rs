//! `POST /auth/jwt/refresh/`

use gatehouse_core::services::refresh;
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::cookie;
use crate::http::Reject;

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let pair = refresh::refresh(app, &cookie::refresh_form(app, req)?).await?;
    Ok(cookie::tokens(app, req, StatusCode::OK, &pair))
}
