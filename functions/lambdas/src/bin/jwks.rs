//! Lambda function `jwks`.

use gatehouse_functions::{boot, handlers::jwks};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(jwks::handler).await
}
