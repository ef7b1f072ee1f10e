//! Lambda function `identities`.

use gatehouse_functions::{boot, handlers::identities};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(identities::handler).await
}
