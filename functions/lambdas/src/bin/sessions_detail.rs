//! Lambda function `sessions_detail`.

use gatehouse_functions::{boot, handlers::sessions_detail};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(sessions_detail::handler).await
}
