//! Lambda function `social`.

use gatehouse_functions::{boot, handlers::social};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(social::handler).await
}
