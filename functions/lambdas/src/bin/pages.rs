//! Lambda function `pages`.

use gatehouse_functions::{boot, handlers::pages};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(pages::handler).await
}
