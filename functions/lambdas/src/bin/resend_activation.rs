//! Lambda function `resend_activation`.

use gatehouse_functions::{boot, handlers::resend_activation};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(resend_activation::handler).await
}
