//! Lambda function `set_email_confirm`.

use gatehouse_functions::{boot, handlers::set_email_confirm};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(set_email_confirm::handler).await
}
