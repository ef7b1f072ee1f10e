//! Lambda function `activation`.

use gatehouse_functions::{boot, handlers::activation};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(activation::handler).await
}
