//! Lambda function `users_me_has`.

use gatehouse_functions::{boot, handlers::users_me_has};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(users_me_has::handler).await
}
