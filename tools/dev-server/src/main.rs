//! Gatehouse dev server: every route in one process on http://127.0.0.1:3000, through the same
//! handlers as the Lambda binaries.
//!
//! With `AWS_ENDPOINT_URL` set it uses DynamoDB and SES v2 at that endpoint (the local emulator;
//! `--create-table` also creates the table and verifies the sender); with `--memory` it needs
//! nothing at all. Every email sent is printed with its link and kept: `GET /_dev/emails`; each
//! kind of email can be previewed with sample data, nothing sent: `GET /_dev/emails/preview/{kind}`.

mod mailbox;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use gatehouse_core::mail::{CaptureMailer, SesMailer};
use gatehouse_core::ports::{Mailer, Store, SystemClock};
use gatehouse_core::store::{DynamoStore, MemoryStore};
use gatehouse_core::{App, Settings};
use gatehouse_functions::routes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use lambda_http::request::RequestContext;
use lambda_http::{Body, RequestExt};
use mailbox::Mailbox;
use tokio::net::TcpListener;

struct Options {
    port: u16,
    memory: bool,
    create_table: bool,
    dev_key: Option<std::path::PathBuf>,
}

fn options() -> Result<Options, String> {
    let mut o = Options {
        port: std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000),
        memory: false,
        create_table: false,
        dev_key: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--memory" => o.memory = true,
            "--create-table" => o.create_table = true,
            "--dev-key" => o.dev_key = Some(args.next().ok_or("--dev-key needs a path")?.into()),
            "--port" => o.port = args.next().and_then(|p| p.parse().ok()).ok_or("--port needs a number")?,
            "-h" | "--help" => {
                println!("usage: gatehouse-dev-server [--port N] [--memory] [--create-table] [--dev-key PATH]\n\n  --memory        memory store and no SES (nothing else needed)\n  --create-table  create the table and verify EMAIL_FROM at AWS_ENDPOINT_URL first\n  --dev-key PATH  without JWT_SIGNING_KEY, sign with the Ed25519 key at PATH (created if missing)\n\nSettings come from the environment (see README).");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other} (try --help)")),
        }
    }
    Ok(o)
}

struct Server {
    app: Arc<App>,
    mailbox: Arc<Mailbox>,
    port: u16,
}

async fn build(o: &Options) -> Result<Server, String> {
    let mut vars: std::collections::HashMap<String, String> = std::env::vars().collect();
    if let (Some(path), None) = (&o.dev_key, vars.get("JWT_SIGNING_KEY")) {
        vars.insert("JWT_SIGNING_KEY".into(), dev_key(path)?);
    }
    let settings = Settings::from_map(&vars).map_err(|e| e.to_string())?;
    let (store, inner): (Arc<dyn Store>, Arc<dyn Mailer>) = if o.memory {
        (Arc::new(MemoryStore::new()), Arc::new(CaptureMailer::new()))
    } else {
        let sdk = gatehouse_core::aws::aws_config().await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), settings.table_name.clone());
        let ses = SesMailer::new(aws_sdk_sesv2::Client::new(&sdk), settings.email_from.clone());
        if o.create_table {
            store.create_table().await.map_err(|e| format!("creating table {}: {e}", settings.table_name))?;
            ses.verify_sender().await.map_err(|e| format!("verifying {}: {e}", settings.email_from))?;
        }
        (Arc::new(store), Arc::new(ses))
    };
    let mailbox = Arc::new(Mailbox::new(inner));
    let app = App::new(settings, store, mailbox.clone(), Arc::new(SystemClock)).map_err(|e| e.to_string())?;
    Ok(Server { app: Arc::new(app), mailbox, port: o.port })
}

/// The local signing key: read, or generated once and kept (never used outside development).
fn dev_key(path: &std::path::Path) -> Result<String, String> {
    if let Ok(pem) = std::fs::read_to_string(path) {
        return Ok(pem);
    }
    let pem = gatehouse_core::tokens::generate_ed25519_pem()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(path, &pem).map_err(|e| format!("{}: {e}", path.display()))?;
    println!("Generated a development signing key at {}", path.display());
    Ok(pem)
}

type HttpResponse = hyper::Response<Full<Bytes>>;

/// The OpenAPI document of the API, served at `/auth/openapi.json`.
const OPENAPI: &str = include_str!("../../../infra/openapi.json");

fn to_hyper(resp: lambda_http::Response<Body>) -> HttpResponse {
    let (parts, body) = resp.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    hyper::Response::from_parts(parts, Full::new(bytes))
}

async fn serve(
    server: Arc<Server>,
    peer: SocketAddr,
    req: hyper::Request<Incoming>,
) -> Result<HttpResponse, Infallible> {
    let (parts, body) = req.into_parts();
    if parts.uri.path() == "/_dev/emails" {
        return Ok(to_hyper(server.mailbox.listing(parts.uri.query())));
    }
    if parts.uri.path() == "/_dev/emails/preview" || parts.uri.path() == "/_dev/emails/preview/" {
        return Ok(to_hyper(mailbox::preview(&server.app.settings, None, None)));
    }
    if let Some(kind) = parts.uri.path().strip_prefix("/_dev/emails/preview/") {
        return Ok(to_hyper(mailbox::preview(&server.app.settings, Some(kind), parts.uri.query())));
    }
    if matches!(parts.uri.path(), "/auth/openapi.json" | "/auth/openapi.json/") {
        let mut resp = hyper::Response::new(Full::new(Bytes::from_static(OPENAPI.as_bytes())));
        resp.headers_mut()
            .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
        return Ok(resp);
    }
    let bytes = match Limited::new(body, gatehouse_functions::http::MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Ok(to_hyper(gatehouse_functions::http::detail(
                lambda_http::http::StatusCode::PAYLOAD_TOO_LARGE,
                "Request body is too large.",
                "payload_too_large",
            )))
        }
    };
    let mut ctx = lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    ctx.http.method = parts.method.clone();
    ctx.http.path = Some(parts.uri.path().to_owned());
    ctx.http.source_ip = Some(peer.ip().to_string());
    // What API Gateway reports as the domain the request came to: this server's.
    ctx.domain_name = Some(format!("localhost:{}", server.port));
    let body = if bytes.is_empty() { Body::Empty } else { Body::Binary(bytes.to_vec()) };
    let request = lambda_http::Request::from_parts(parts, body).with_request_context(RequestContext::ApiGatewayV2(ctx));
    let method = request.method().as_str().to_owned();
    // The route, not the path, as API Gateway's access log writes routeKey: the path of an email
    // link carries its token.
    let route = match routes::find(&method, request.uri().path()) {
        routes::Match::Found(r, _) => r.path,
        _ => "(no route)",
    };
    let resp = routes::dispatch(server.app.clone(), request).await;
    tracing::info!(method = %method, route = %route, status = resp.status().as_u16(), "request");
    Ok(to_hyper(resp))
}

#[tokio::main]
async fn main() {
    gatehouse_functions::boot::init_tracing();
    let result = async {
        let o = options()?;
        let server = Arc::new(build(&o).await?);
        let addr = SocketAddr::from(([127, 0, 0, 1], o.port));
        let listener = TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        println!(
            "Gatehouse dev server on http://{addr} ({}); emails at http://{addr}/_dev/emails, previews at http://{addr}/_dev/emails/preview",
            if o.memory { "memory store" } else { "DynamoDB + SES" }
        );
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    let server = server.clone();
                    tokio::spawn(async move {
                        let svc = service_fn(move |req| serve(server.clone(), peer, req));
                        let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                    });
                }
                _ = tokio::signal::ctrl_c() => return Ok::<(), String>(()),
            }
        }
    }
    .await;
    if let Err(e) = result {
        eprintln!("gatehouse-dev-server: {e}");
        std::process::exit(1);
    }
}
