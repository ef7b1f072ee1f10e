//! Lambda function `users`.

use gatehouse_functions::{boot, handlers::users};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(users::handler).await
}
