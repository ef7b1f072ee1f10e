//! `POST /auth/jwt/create/`: JSON or form body, or `Authorization: Basic`.

use gatehouse_core::services::login;
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::http;

super::entry_point!();

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub async fn handle(app: &App, req: Request) -> Response<Body> {
    let form = match http::form(&req) {
        Ok(f) => f,
        Err(resp) => return resp,
    };
    let (mut email, mut password) = (text(form.0.get("email")), text(form.0.get("password")));
    if email.is_none() && password.is_none() {
        match http::basic(&req) {
            Ok(Some((login, pw))) => (email, password) = (Some(login), Some(pw)),
            Ok(None) => {}
            Err(resp) => return resp,
        }
    }
    let client = http::client_info(&req);
    http::respond(login::login(app, email, password, &client).await, |pair| {
        http::json(StatusCode::OK, &http::tokens_body(&pair))
    })
}
