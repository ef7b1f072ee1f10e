//! Lambda function `fallback`.

use gatehouse_functions::{boot, handlers::fallback};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(fallback::handler).await
}
