//! The HttpApi `$default` route: DRF-shaped 404 for unknown paths and 405 (with `Allow`) for
//! known paths called with another method.

use gatehouse_core::App;
use lambda_http::{Body, Request, Response};

use crate::http::{self, Reject};
use crate::routes::{find, Match};

super::entry_point!();

async fn run(_app: &App, req: &Request) -> Result<Response<Body>, Reject> {
    Ok(answer(req))
}

/// The 404/405 for a request no route took (also what the dev server answers).
pub fn answer(req: &Request) -> Response<Body> {
    match find(req.method().as_str(), req.uri().path()) {
        Match::WrongMethod(allowed) => http::method_not_allowed(req.method().as_str(), &allowed),
        Match::Found(..) | Match::NotFound => http::not_found(),
    }
}
