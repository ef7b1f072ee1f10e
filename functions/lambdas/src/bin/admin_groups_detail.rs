//! Lambda function `admin_groups_detail`.

use gatehouse_functions::{boot, handlers::admin_groups_detail};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    boot::run(admin_groups_detail::handler).await
}
