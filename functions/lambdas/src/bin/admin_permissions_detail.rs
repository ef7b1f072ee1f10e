//! Lambda function `admin_permissions_detail`.

use gatehouse_functions::{boot, handlers::admin_permissions_detail};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(admin_permissions_detail::handler).await
}
