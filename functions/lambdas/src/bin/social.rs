//! Lambda function `social`.

use gatehouse_functions::{boot, handlers::social};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(social::handler).await
}
