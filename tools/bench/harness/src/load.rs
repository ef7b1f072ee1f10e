//! `load SPEC.json`: N connections, each running one flow in a loop for a fixed time.
//!
//! Spec:
//! ```json
//! {"base": "http://127.0.0.1:3000", "scenario": "me", "connections": 16,
//!  "warmup_s": 1, "duration_s": 5, "register_prefix": "bench-x",
//!  "password": "...", "sessions": [{"email": "..", "password": "..", "access": "..", "refresh": ".."}]}
//! ```
//! Scenarios: `verify` (POST jwt/verify/ with an access token), `me` (GET users/me/), `refresh`
//! (POST jwt/refresh/, each connection following its own rotation chain), `create` (POST
//! jwt/create/ with the connection's user), `register` (POST users/ with a new email each time).
//! Connection `i` uses `sessions[i % len]`. Requests that complete within the measuring window
//! (after the warm-up, before the end) are counted; only expected statuses count as done.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::{Client, Req};
use crate::percentile;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    Verify,
    Me,
    Refresh,
    Create,
    Register,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
    first_error: Option<String>,
    connects: u64,
}

struct Session {
    email: String,
    password: String,
    access: String,
    refresh: String,
}

pub async fn run(spec: Value) -> Result<Value, String> {
    let base = spec["base"].as_str().ok_or("spec.base")?.to_owned();
    let scenario = match spec["scenario"].as_str().unwrap_or("") {
        "verify" => Scenario::Verify,
        "me" => Scenario::Me,
        "refresh" => Scenario::Refresh,
        "create" => Scenario::Create,
        "register" => Scenario::Register,
        other => return Err(format!("unknown scenario {other:?}")),
    };
    let connections = spec["connections"].as_u64().unwrap_or(1).clamp(1, 256) as usize;
    let warmup = Duration::from_secs_f64(spec["warmup_s"].as_f64().unwrap_or(1.0).clamp(0.0, 60.0));
    let duration = Duration::from_secs_f64(spec["duration_s"].as_f64().unwrap_or(5.0).clamp(0.1, 120.0));
    let prefix = spec["register_prefix"].as_str().unwrap_or("bench").to_owned();
    let password = spec["password"].as_str().unwrap_or("").to_owned();
    let sessions: Vec<Value> = spec["sessions"].as_array().cloned().unwrap_or_default();
    if sessions.is_empty() && scenario != Scenario::Register {
        return Err("spec.sessions is empty".into());
    }

    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut tasks = Vec::new();
    for i in 0..connections {
        let s = sessions.get(i % sessions.len().max(1)).cloned().unwrap_or(Value::Null);
        let session = Session {
            email: s["email"].as_str().unwrap_or("").to_owned(),
            password: s["password"].as_str().unwrap_or(&password).to_owned(),
            access: s["access"].as_str().unwrap_or("").to_owned(),
            refresh: s["refresh"].as_str().unwrap_or("").to_owned(),
        };
        let client = Client::new(&base)?;
        let prefix = format!("{prefix}-{i}");
        let password = password.clone();
        tasks.push(tokio::spawn(worker(
            scenario,
            client,
            session,
            prefix,
            password,
            measure_from,
            end,
        )));
    }
    let mut total = Tally::default();
    for t in tasks {
        let tally = t.await.map_err(|e| e.to_string())?;
        total.latencies_us.extend(tally.latencies_us);
        for (k, v) in tally.statuses {
            *total.statuses.entry(k).or_default() += v;
        }
        total.errors += tally.errors;
        total.connects += tally.connects;
        if total.first_error.is_none() {
            total.first_error = tally.first_error;
        }
    }
    let mut lat = total.latencies_us;
    lat.sort_unstable();
    let ok = lat.len() as u64;
    let ms = |us: u64| us as f64 / 1000.0;
    let mean = if lat.is_empty() {
        0.0
    } else {
        lat.iter().sum::<u64>() as f64 / lat.len() as f64 / 1000.0
    };
    Ok(json!({
        "scenario": spec["scenario"],
        "connections": connections,
        "duration_s": duration.as_secs_f64(),
        "ok": ok,
        "errors": total.errors,
        "statuses": total.statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "first_error": total.first_error,
        "connects": total.connects,
        "rps": ok as f64 / duration.as_secs_f64(),
        "p50_ms": ms(percentile(&lat, 50.0)),
        "p90_ms": ms(percentile(&lat, 90.0)),
        "p99_ms": ms(percentile(&lat, 99.0)),
        "max_ms": ms(lat.last().copied().unwrap_or(0)),
        "mean_ms": mean,
    }))
}

async fn worker(
    scenario: Scenario,
    mut client: Client,
    mut session: Session,
    prefix: String,
    password: String,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let mut n: u64 = 0;
    while Instant::now() < end {
        n += 1;
        let (req, expect) = match scenario {
            Scenario::Verify => (
                Req::post_json("/auth/jwt/verify/", &json!({"token": session.access})),
                200,
            ),
            Scenario::Me => (
                Req::get("/auth/users/me/").header("authorization", &format!("Bearer {}", session.access)),
                200,
            ),
            Scenario::Refresh => (
                Req::post_json("/auth/jwt/refresh/", &json!({"refresh": session.refresh})),
                200,
            ),
            Scenario::Create => (
                Req::post_json(
                    "/auth/jwt/create/",
                    &json!({"email": session.email, "password": session.password}),
                ),
                200,
            ),
            Scenario::Register => (
                Req::post_json(
                    "/auth/users/",
                    &json!({"email": format!("{prefix}-{n}@bench.example.com"), "password": password}),
                ),
                201,
            ),
        };
        let t0 = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(30), client.send(&req)).await;
        let done = Instant::now();
        let in_window = done >= measure_from && done <= end;
        match result {
            Ok(Ok((status, body))) => {
                if in_window {
                    *tally.statuses.entry(status).or_default() += 1;
                }
                if status == expect {
                    if in_window {
                        tally.latencies_us.push(done.duration_since(t0).as_micros() as u64);
                    }
                    if scenario == Scenario::Refresh {
                        // Follow the rotation chain (simplejwt and Gatehouse both answer {access, refresh}).
                        if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                            if let Some(r) = v["refresh"].as_str() {
                                session.refresh = r.to_owned();
                            }
                        }
                    }
                } else {
                    if in_window {
                        tally.errors += 1;
                    }
                    if tally.first_error.is_none() {
                        let text = String::from_utf8_lossy(&body);
                        tally.first_error = Some(format!("HTTP {status}: {}", text.chars().take(300).collect::<String>()));
                    }
                    if scenario == Scenario::Refresh && status == 401 {
                        // The chain is broken; nothing more to measure on this connection.
                        break;
                    }
                }
            }
            Ok(Err(e)) => {
                if in_window {
                    tally.errors += 1;
                }
                if tally.first_error.is_none() {
                    tally.first_error = Some(e);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => {
                if in_window {
                    tally.errors += 1;
                }
                if tally.first_error.is_none() {
                    tally.first_error = Some("timed out after 30 s".into());
                }
                client = match Client::new(&format!("http://{}", client_addr(&client))) {
                    Ok(c) => c,
                    Err(_) => break,
                };
            }
        }
    }
    tally.connects = client.connects;
    tally
}

fn client_addr(c: &Client) -> String {
    c.addr().to_string()
}
