//! Lambda function `users_detail`.

use gatehouse_functions::{boot, handlers::users_detail};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(users_detail::handler).await
}
