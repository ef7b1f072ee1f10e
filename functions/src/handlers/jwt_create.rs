//! `POST /auth/jwt/create/`: JSON or form body, or `Authorization: Basic`.

use gatehouse_core::services::login;
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::cookie;
use crate::http::{self, Reject};

super::entry_point!();

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let form = http::form(req)?;
    let (mut email, mut password) = (text(form.0.get("email")), text(form.0.get("password")));
    if email.is_none() && password.is_none() {
        if let Some((login, pw)) = http::basic(req)? {
            (email, password) = (Some(login), Some(pw));
        }
    }
    let pair = login::login(app, email, password, &http::client_info(req)).await?;
    Ok(cookie::tokens(app, req, StatusCode::OK, &pair))
}
