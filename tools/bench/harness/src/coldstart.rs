//! `coldstart SPEC.json`: a local stand-in of the Lambda Runtime API and a cold-start timer.
//!
//! For every run and every binary (in a shuffled order per run, so that background load hits
//! all of them alike) the binary is spawned with a clean environment pointing
//! `AWS_LAMBDA_RUNTIME_API` at the stand-in. Measured from just before the spawn:
//! - `next_ms`: its first `GET /2018-06-01/runtime/invocation/next` (the end of its init);
//! - `response_ms`: its `POST /2018-06-01/runtime/invocation/{id}/response` for the event given.
//!
//! Then it is killed. With `aws_upstream`, `AWS_ENDPOINT_URL` points at a counting TCP relay to
//! the emulator: a connection opened before the first poll is a network call at init.
//!
//! Spec:
//! ```json
//! {"runs": 20, "timeout_s": 15, "aws_upstream": "127.0.0.1:4566", "env": {"EMAIL_FROM": "..."},
//!  "binaries": [{"name": "jwt_verify", "path": "target/release/jwt_verify",
//!                "event": "/path/event.json", "log": "/path/log", "env": {"EXTRA": "1"}}]}
//! ```
//! `{{RUN}}` in an event is replaced by a string unique to the spawn (e.g. to register new emails).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::Rng;

enum Msg {
    Next(Instant),
    Response(Instant, Option<u16>),
    Error(String),
}

struct RuntimeState {
    generation: u64,
    served: u64,
    event: Bytes,
    tx: mpsc::UnboundedSender<Msg>,
}

type Shared = Arc<Mutex<RuntimeState>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, RuntimeState> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

async fn runtime_api(state: Shared, req: hyper::Request<Incoming>) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let now = Instant::now();
    let path = req.uri().path().to_owned();
    let reply = |status: u16, body: &'static str| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap_or_default()
    };
    if req.method() == hyper::Method::GET && path.ends_with("/runtime/invocation/next") {
        let event = {
            let mut s = lock(&state);
            if s.served == s.generation {
                None
            } else {
                s.served = s.generation;
                let _ = s.tx.send(Msg::Next(now));
                Some((s.event.clone(), s.generation))
            }
        };
        let Some((event, generation)) = event else {
            // The second poll of a process: it is killed before anything else happens.
            tokio::time::sleep(Duration::from_secs(120)).await;
            return Ok(reply(500, "{}"));
        };
        let deadline = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() + 30_000)
            .unwrap_or(0);
        let resp = hyper::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", format!("bench-{generation}"))
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:123456789012:function:bench",
            )
            .header("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0")
            .body(Full::new(event))
            .unwrap_or_default();
        return Ok(resp);
    }
    if req.method() == hyper::Method::POST {
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let msg = if path.ends_with("/response") {
            let status = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["statusCode"].as_u64())
                .map(|s| s as u16);
            Msg::Response(now, status)
        } else {
            Msg::Error(String::from_utf8_lossy(&body).chars().take(300).collect())
        };
        let _ = lock(&state).tx.send(msg);
        return Ok(reply(202, r#"{"status":"OK"}"#));
    }
    Ok(reply(404, "{}"))
}

async fn serve_runtime_api(listener: TcpListener, state: Shared) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| runtime_api(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// A TCP relay to the emulator that notes when each connection was opened.
async fn relay(listener: TcpListener, upstream: SocketAddr, opened: Arc<Mutex<Vec<Instant>>>) {
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else { continue };
        opened.lock().unwrap_or_else(|p| p.into_inner()).push(Instant::now());
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

struct Binary {
    name: String,
    path: String,
    event: String,
    log: Option<String>,
    env: Vec<(String, String)>,
}

#[derive(Default)]
struct Outcome {
    next_ms: Vec<f64>,
    response_ms: Vec<f64>,
    statuses: BTreeMap<String, u64>,
    init_connections: u64,
    failures: Vec<String>,
}

fn env_list(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned())).collect())
        .unwrap_or_default()
}

pub async fn run(spec: Value) -> Result<Value, String> {
    let runs = spec["runs"].as_u64().unwrap_or(20).clamp(1, 500);
    let timeout = Duration::from_secs_f64(spec["timeout_s"].as_f64().unwrap_or(15.0).clamp(1.0, 120.0));
    let common_env = env_list(&spec["env"]);
    let mut binaries = Vec::new();
    for b in spec["binaries"].as_array().ok_or("spec.binaries")? {
        let event_path = b["event"].as_str().ok_or("binary without event")?;
        binaries.push(Binary {
            name: b["name"].as_str().ok_or("binary without name")?.to_owned(),
            path: b["path"].as_str().ok_or("binary without path")?.to_owned(),
            event: std::fs::read_to_string(event_path).map_err(|e| format!("{event_path}: {e}"))?,
            log: b["log"].as_str().map(str::to_owned),
            env: env_list(&b["env"]),
        });
    }

    let (tx, mut rx) = mpsc::unbounded_channel();
    let state: Shared = Arc::new(Mutex::new(RuntimeState {
        generation: 0,
        served: 0,
        event: Bytes::new(),
        tx,
    }));
    let rt_listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let rt_addr = rt_listener.local_addr().map_err(|e| e.to_string())?;
    tokio::spawn(serve_runtime_api(rt_listener, state.clone()));

    let opened = Arc::new(Mutex::new(Vec::new()));
    let mut aws_endpoint = None;
    if let Some(upstream) = spec["aws_upstream"].as_str() {
        let upstream: SocketAddr = upstream.parse().map_err(|e| format!("aws_upstream: {e}"))?;
        if !upstream.ip().is_loopback() {
            return Err("aws_upstream must be a loopback address".into());
        }
        let l = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        aws_endpoint = Some(format!("http://{}", l.local_addr().map_err(|e| e.to_string())?));
        tokio::spawn(relay(l, upstream, opened.clone()));
    }

    let nonce = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut rng = Rng::new(nonce);
    let mut outcomes: BTreeMap<String, Outcome> = BTreeMap::new();
    let mut order: Vec<usize> = (0..binaries.len()).collect();
    for run in 0..runs {
        rng.shuffle(&mut order);
        for &i in &order {
            let b = &binaries[i];
            let out = outcomes.entry(b.name.clone()).or_default();
            let tag = format!("{nonce}-{run}-{i}");
            {
                let mut s = lock(&state);
                s.generation += 1;
                s.event = Bytes::from(b.event.replace("{{RUN}}", &tag));
            }
            while rx.try_recv().is_ok() {}
            let mut cmd = tokio::process::Command::new(&b.path);
            cmd.env_clear()
                .envs(common_env.iter().cloned())
                .env("AWS_LAMBDA_RUNTIME_API", rt_addr.to_string())
                .env("AWS_LAMBDA_FUNCTION_NAME", &b.name)
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
                .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{}", b.name))
                .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
                .envs(b.env.iter().cloned())
                .stdin(Stdio::null())
                .kill_on_drop(true);
            if let Some(endpoint) = &aws_endpoint {
                cmd.env("AWS_ENDPOINT_URL", endpoint);
            }
            match &b.log {
                Some(path) => {
                    let f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|e| format!("{path}: {e}"))?;
                    let f2 = f.try_clone().map_err(|e| e.to_string())?;
                    cmd.stdout(Stdio::from(f)).stderr(Stdio::from(f2));
                }
                None => {
                    cmd.stdout(Stdio::null()).stderr(Stdio::null());
                }
            }
            let t0 = Instant::now();
            let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", b.path))?;
            let deadline = tokio::time::Instant::from_std(t0 + timeout);
            let mut next_at = None;
            let mut failure = None;
            loop {
                tokio::select! {
                    msg = rx.recv() => match msg {
                        Some(Msg::Next(at)) => next_at = Some(at),
                        Some(Msg::Response(at, status)) => {
                            out.response_ms.push(at.duration_since(t0).as_secs_f64() * 1000.0);
                            let key = status.map(|s| s.to_string()).unwrap_or_else(|| "?".into());
                            *out.statuses.entry(key).or_default() += 1;
                            break;
                        }
                        Some(Msg::Error(body)) => { failure = Some(format!("runtime error: {body}")); break; }
                        None => { failure = Some("runtime API stopped".into()); break; }
                    },
                    status = child.wait() => {
                        failure = Some(format!("exited before responding: {status:?}"));
                        break;
                    }
                    _ = tokio::time::sleep_until(deadline) => {
                        failure = Some(format!("no response within {timeout:?}"));
                        break;
                    }
                }
            }
            let _ = child.start_kill();
            let _ = child.wait().await;
            if let Some(next) = next_at {
                out.next_ms.push(next.duration_since(t0).as_secs_f64() * 1000.0);
                let early = opened
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .filter(|&&at| at >= t0 && at < next)
                    .count();
                out.init_connections += early as u64;
            }
            if let Some(f) = failure {
                if out.failures.len() < 5 {
                    out.failures.push(f);
                } else {
                    out.failures[4] = format!("{} (and more)", out.failures[4].trim_end_matches(" (and more)"));
                }
            }
        }
    }
    let results: serde_json::Map<String, Value> = outcomes
        .into_iter()
        .map(|(name, o)| {
            (
                name,
                json!({
                    "next_ms": o.next_ms,
                    "response_ms": o.response_ms,
                    "statuses": o.statuses,
                    "init_connections": o.init_connections,
                    "failures": o.failures,
                }),
            )
        })
        .collect();
    Ok(json!({"runs": runs, "results": results}))
}
