//! Lambda function `register`.

use gatehouse_functions::{boot, handlers::register};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(register::handler).await
}
