//! Lambda function `identities_detail`.

use gatehouse_functions::{boot, handlers::identities_detail};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(identities_detail::handler).await
}
