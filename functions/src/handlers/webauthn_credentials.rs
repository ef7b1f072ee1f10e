//! `GET /auth/webauthn/credentials/`: the caller's passkeys.

use gatehouse_core::services::{auth, passkeys};
use gatehouse_core::App;
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde_json::Value;

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let list: Vec<Value> = passkeys::list(app, &caller).await?.iter().map(passkeys::body).collect();
    Ok(http::json(StatusCode::OK, &Value::Array(list)))
}
