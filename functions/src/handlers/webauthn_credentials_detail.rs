//! `PATCH /auth/webauthn/credentials/{id}/` (rename) and `DELETE` (remove, a sensitive step).

use gatehouse_core::services::{auth, passkeys};
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let id = http::path_param(req, "id");
    let form = http::form(req)?;
    if req.method() == Method::DELETE {
        passkeys::remove(app, &caller, &http::client_info(req), &id, &form).await?;
        return Ok(http::no_content());
    }
    let passkey = passkeys::rename(app, &caller, &id, &form).await?;
    Ok(http::json(StatusCode::OK, &passkeys::body(&passkey)))
}
