//! `GET/PUT/PATCH/DELETE /auth/users/{id}/`: staff, or the user themselves.

use gatehouse_core::services::{auth, users};
use gatehouse_core::App;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};
use crate::routes::{self, Match};

super::entry_point!();

async fn run(app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    // API Gateway sends e.g. GET /auth/users/activation/ here; answer as the route table does.
    match routes::find(req.method().as_str(), req.uri().path()) {
        Match::Found(route, _) if route.function == "users_detail" => {}
        Match::WrongMethod(allowed) => return Ok(http::method_not_allowed(req.method().as_str(), &allowed)),
        _ => return Ok(http::not_found()),
    }
    let id = http::path_param(req, "id");
    let caller = auth::authenticate(app, http::bearer(req)?).await?;
    match *req.method() {
        Method::GET => {
            let user = http::shown(app, users::target(app, &caller, &id).await?).await?;
            Ok(http::json(StatusCode::OK, &http::user_body(&user)))
        }
        Method::DELETE => {
            users::delete(app, &caller, &http::client_info(req), &id, &http::form(req)?).await?;
            Ok(http::no_content())
        }
        _ => {
            let user = users::update(app, &caller, &id, &http::form(req)?).await?;
            Ok(http::json(StatusCode::OK, &http::user_body(&http::shown(app, user).await?)))
        }
    }
}
