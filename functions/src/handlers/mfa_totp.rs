//! `POST /auth/mfa/totp/` (start a TOTP enrolment) and `DELETE /auth/mfa/totp/` (turn two-step
//! sign-in off).

use gatehouse_core::services::{auth, mfa};
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let (client, form) = (http::client_info(req), http::form(req)?);
    if req.method() == Method::DELETE {
        mfa::disable(app, &caller, &client, &form).await?;
        return Ok(http::no_content());
    }
    let e = mfa::enrol(app, &caller, &client, &form).await?;
    Ok(http::json(StatusCode::OK, &json!({"secret": e.secret, "otpauth_url": e.otpauth_url, "qr_svg": e.qr_svg})))
}
