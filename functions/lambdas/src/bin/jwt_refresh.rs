//! Lambda function `jwt_refresh`.

use gatehouse_functions::{boot, handlers::jwt_refresh};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(jwt_refresh::handler).await
}
