//! Lambda function `reset_password_confirm`.

use gatehouse_functions::{boot, handlers::reset_password_confirm};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(reset_password_confirm::handler).await
}
