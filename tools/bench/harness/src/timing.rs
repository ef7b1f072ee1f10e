//! `timing SPEC.json`: one connection, requests sent one at a time in random order, so that
//! every kind of request sees the same conditions.
//!
//! Spec:
//! ```json
//! {"base": "http://127.0.0.1:3000", "blocks": 5, "per_block": 30, "warmup": 3, "seed": 1,
//!  "argon2": {"m": 19456, "t": 2, "p": 1},
//!  "requests": [{"label": "create_existing", "method": "POST", "path": "/auth/jwt/create/",
//!                "body": {...}, "headers": {...}}]}
//! ```
//! With `argon2`, an extra label `argon2` times one local argon2id hash at those parameters,
//! interleaved with the requests (the login overhead is a login minus a hash).
//! Each block holds `per_block` of every label, shuffled. Output: per label, `[block, µs, status]`.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{json, Value};

use crate::client::{Client, Req};
use crate::{Argon2Timer, Rng};

pub async fn run(spec: Value) -> Result<Value, String> {
    let base = spec["base"].as_str().ok_or("spec.base")?;
    let blocks = spec["blocks"].as_u64().unwrap_or(5).clamp(1, 50);
    let per_block = spec["per_block"].as_u64().unwrap_or(20).clamp(1, 1000);
    let warmup = spec["warmup"].as_u64().unwrap_or(3).min(100);
    let mut rng = Rng::new(spec["seed"].as_u64().unwrap_or(1));
    let mut labels: Vec<(String, Option<Req>)> = Vec::new();
    for r in spec["requests"].as_array().ok_or("spec.requests")? {
        let label = r["label"].as_str().ok_or("request without a label")?.to_owned();
        labels.push((label, Some(Req::from_spec(r)?)));
    }
    let mut argon2 = match &spec["argon2"] {
        Value::Object(a) => {
            let n = |k: &str| a.get(k).and_then(Value::as_u64).unwrap_or(0) as u32;
            labels.push(("argon2".into(), None));
            Some(Argon2Timer::new(n("m"), n("t"), n("p"))?)
        }
        _ => None,
    };
    let mut client = Client::new(base)?;
    let mut samples: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for _ in 0..warmup {
        for i in 0..labels.len() {
            one(&mut client, &mut argon2, &labels[i]).await?;
        }
    }
    for block in 0..blocks {
        let mut order: Vec<usize> = (0..labels.len())
            .flat_map(|i| std::iter::repeat_n(i, per_block as usize))
            .collect();
        rng.shuffle(&mut order);
        for i in order {
            let (label, us, status) = one(&mut client, &mut argon2, &labels[i]).await?;
            samples.entry(label).or_default().push(json!([block, us, status]));
        }
    }
    Ok(json!({"blocks": blocks, "per_block": per_block, "samples": samples}))
}

async fn one(
    client: &mut Client,
    argon2: &mut Option<Argon2Timer>,
    (label, req): &(String, Option<Req>),
) -> Result<(String, u64, u16), String> {
    match (req, argon2.as_mut()) {
        (Some(req), _) => {
            let t0 = Instant::now();
            let (status, _) = client.send(req).await?;
            Ok((label.clone(), t0.elapsed().as_micros() as u64, status))
        }
        (None, Some(a)) => Ok((label.clone(), a.hash_us()?, 0)),
        (None, None) => Err("argon2 label without parameters".into()),
    }
}
