//! Lambda function `jwt_verify`.

use gatehouse_functions::{boot, handlers::jwt_verify};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(jwt_verify::handler).await
}
