//! Lambda function `users_me`.

use gatehouse_functions::{boot, handlers::users_me};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(users_me::handler).await
}
