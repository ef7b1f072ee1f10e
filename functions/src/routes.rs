//! The route table: which function serves which method and path. The dev server routes by it,
//! the `fallback` function answers 404/405 by it, and a test holds it equal to the HttpApi
//! events of `infra/template.yaml`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use gatehouse_core::App;
use lambda_http::{Body, Request, Response};

use crate::handlers;

pub type HandlerFuture = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;
pub type Handler = fn(Arc<App>, Request) -> HandlerFuture;

/// One route: every path answers with and without its trailing slash.
pub struct Route {
    pub method: &'static str,
    /// Canonical path, without the trailing slash.
    pub path: &'static str,
    /// The Lambda binary (and SAM function) serving it.
    pub function: &'static str,
    pub handler: Handler,
}

macro_rules! route {
    ($method:literal, $path:literal, $module:ident) => {
        Route {
            method: $method,
            path: $path,
            function: stringify!($module),
            handler: handlers::$module::handler,
        }
    };
}

pub static ROUTES: &[Route] = &[
    route!("POST", "/auth/users", register),
    route!("POST", "/auth/users/activation", activation),
    route!("POST", "/auth/users/resend_activation", resend_activation),
    route!("GET", "/auth/users/me", users_me),
    route!("PUT", "/auth/users/me", users_me),
    route!("PATCH", "/auth/users/me", users_me),
    route!("POST", "/auth/jwt/create", jwt_create),
    route!("POST", "/auth/jwt/refresh", jwt_refresh),
    route!("POST", "/auth/jwt/verify", jwt_verify),
];

/// What the table says about a request.
pub enum Match {
    Found(&'static Route),
    /// The path exists, but not with this method: these are the methods it takes.
    WrongMethod(Vec<&'static str>),
    NotFound,
}

/// Looks a request up; a trailing slash is ignored.
pub fn find(method: &str, path: &str) -> Match {
    let path = canonical(path);
    let on_path: Vec<&'static Route> = ROUTES.iter().filter(|r| r.path == path).collect();
    if on_path.is_empty() {
        return Match::NotFound;
    }
    match on_path.iter().find(|r| r.method.eq_ignore_ascii_case(method)) {
        Some(r) => Match::Found(r),
        None => Match::WrongMethod(on_path.iter().map(|r| r.method).collect()),
    }
}

/// The path without its trailing slash (the root stays `/`).
pub fn canonical(path: &str) -> &str {
    match path.strip_suffix('/') {
        Some(p) if !p.is_empty() => p,
        _ => path,
    }
}
