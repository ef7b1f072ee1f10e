//! Lambda function `admin_groups`.

use gatehouse_functions::{boot, handlers::admin_groups};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(admin_groups::handler).await
}
