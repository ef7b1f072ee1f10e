//! The cold-start floor: the smallest useful lambda_http function, built with the same release
//! profile as the Gatehouse functions. It answers every event with 200 `{"hello":"world"}`.

use lambda_http::{run, service_fn, Body, Error, Request, Response};

async fn hello(_event: Request) -> Result<Response<Body>, Error> {
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(r#"{"hello":"world"}"#))?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(hello)).await
}
