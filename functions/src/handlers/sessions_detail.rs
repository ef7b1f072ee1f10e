//! `DELETE /auth/sessions/{id}/`: end one of the caller's sessions.

use gatehouse_core::services::{auth, sessions};
use gatehouse_core::App;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    let sid = http::path_param(req, "id");
    sessions::revoke(app, &caller, &sid).await?;
    Ok(http::no_content())
}
