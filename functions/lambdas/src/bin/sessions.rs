//! Lambda function `sessions`.

use gatehouse_functions::{boot, handlers::sessions};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(sessions::handler).await
}
