//! One module per function: Request -> service call -> Response. Each exposes `handler`, the
//! boxed entry point used by its binary, the route table and the dev server.

pub mod activation;
pub mod fallback;
pub mod jwt_create;
pub mod jwt_refresh;
pub mod jwt_verify;
pub mod register;
pub mod resend_activation;
pub mod users_me;

/// Declares `handler`, boxing the module's `async fn handle(&App, Request) -> Response<Body>`.
macro_rules! entry_point {
    () => {
        /// Boxed entry point (binary, route table, dev server).
        pub fn handler(
            app: std::sync::Arc<gatehouse_core::App>,
            req: lambda_http::Request,
        ) -> crate::routes::HandlerFuture {
            Box::pin(async move { handle(&app, req).await })
        }
    };
}
pub(crate) use entry_point;
