//! Lambda function `reset_password`.

use gatehouse_functions::{boot, handlers::reset_password};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(reset_password::handler).await
}
