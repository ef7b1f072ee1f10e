//! Lambda function `set_email`.

use gatehouse_functions::{boot, handlers::set_email};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(set_email::handler).await
}
