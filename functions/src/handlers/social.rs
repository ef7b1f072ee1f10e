//! `GET /auth/o/{provider}/?redirect_uri=` (the provider's authorization URL) and `POST
//! /auth/o/{provider}/` with `code` and `state` (djoser's social endpoints): the sign-in's tokens,
//! 201 as djoser's view answers, with `user` the account's address.

use gatehouse_core::services::social;
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

use crate::cookie;
use crate::http::{self, Reject};

super::entry_point!();

/// The fields djoser also reads from the query string.
const QUERY_FIELDS: [&str; 4] = ["code", "state", "redirect_uri", "user"];

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let provider = http::path_param(req, "provider");
    let client = http::client_info(req);
    if req.method() == Method::GET {
        let url = social::begin(app, &provider, http::query(req, "redirect_uri").as_deref(), &client).await?;
        return Ok(http::json(StatusCode::OK, &json!({ "authorization_url": url })));
    }
    let mut form = http::form(req)?;
    for field in QUERY_FIELDS {
        if !form.contains(field) {
            if let Some(v) = http::query(req, field) {
                form.0.insert(field.to_owned(), Value::String(v));
            }
        }
    }
    let signed_in = social::complete(app, &provider, &form, &client).await?;
    let user = serde_json::Map::from_iter([("user".to_owned(), json!(signed_in.user.email.as_str()))]);
    Ok(cookie::tokens_with(app, req, StatusCode::CREATED, &signed_in.tokens, user))
}
