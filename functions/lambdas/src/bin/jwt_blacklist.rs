//! Lambda function `jwt_blacklist`.

use gatehouse_functions::{boot, handlers::jwt_blacklist};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(jwt_blacklist::handler).await
}
