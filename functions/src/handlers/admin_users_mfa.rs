//! `DELETE /auth/admin/users/{id}/mfa/` (`auth.change_user`): turn an account's two-step
//! sign-in off.

use gatehouse_core::services::{admin_users, auth};
use gatehouse_core::App;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    admin_users::reset_mfa(app, &caller, &http::path_param(req, "id")).await?;
    Ok(http::no_content())
}
