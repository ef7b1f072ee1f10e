//! Lambda function `set_password`.

use gatehouse_functions::{boot, handlers::set_password};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(set_password::handler).await
}
