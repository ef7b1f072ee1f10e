//! Lambda function `jwt_create`.

use gatehouse_functions::{boot, handlers::jwt_create};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(jwt_create::handler).await
}
