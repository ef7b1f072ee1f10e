//! `bench-harness`: the measuring tools of `make bench` (driven by bench/bench.py).
//!
//! ```text
//! bench-harness coldstart SPEC.json   cold starts against a local stand-in of the Lambda Runtime API
//! bench-harness load SPEC.json        HTTP load (keep-alive, N connections, fixed duration)
//! bench-harness timing SPEC.json      sequential, randomly interleaved requests (timing safety,
//!                                     login overhead beyond the argon2id hash)
//! bench-harness argon2 M T P RUNS     argon2id hash time at the given parameters
//! ```
//! Every subcommand prints one JSON document on stdout. Everything talks to 127.0.0.1 only and
//! every loop is bounded by a count or a deadline.

mod client;
mod coldstart;
mod load;
mod timing;

use std::time::Instant;

use serde_json::{json, Value};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.get(1).map(String::as_str) {
        Some("coldstart") => spec(&args).and_then(|s| run(coldstart::run(s))),
        Some("load") => spec(&args).and_then(|s| run(load::run(s))),
        Some("timing") => spec(&args).and_then(|s| run(timing::run(s))),
        Some("argon2") => argon2_cmd(&args[2..]),
        _ => Err("usage: bench-harness coldstart|load|timing SPEC.json | argon2 M T P RUNS".to_owned()),
    };
    match result {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("bench-harness: {e}");
            std::process::exit(1);
        }
    }
}

fn spec(args: &[String]) -> Result<Value, String> {
    let path = args.get(2).ok_or("missing SPEC.json")?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))
}

fn run<F: std::future::Future<Output = Result<Value, String>>>(f: F) -> Result<Value, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?
        .block_on(f)
}

/// An argon2id hasher with the given cost, hashing as gatehouse-core does: the working memory is
/// allocated once and reused (gatehouse-core's `MemoryPool`). `hash_alloc_us` allocates it per
/// hash instead, as the argon2 crate's own `hash_password` does, to show what the reuse saves.
pub struct Argon2Timer {
    argon2: argon2::Argon2<'static>,
    memory: Vec<argon2::Block>,
    counter: u64,
}

impl Argon2Timer {
    pub fn new(m: u32, t: u32, p: u32) -> Result<Self, String> {
        let params = argon2::Params::new(m, t, p, None).map_err(|e| e.to_string())?;
        Ok(Self {
            memory: vec![argon2::Block::default(); params.block_count()],
            argon2: argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params),
            counter: 0,
        })
    }

    fn salt(&mut self) -> [u8; 16] {
        self.counter += 1;
        let mut salt = [0u8; 16];
        salt[..8].copy_from_slice(&self.counter.to_le_bytes());
        salt
    }

    /// One hash in the kept memory (a verify costs the same); microseconds.
    pub fn hash_us(&mut self) -> Result<u64, String> {
        let salt = self.salt();
        let mut out = [0u8; 32];
        let start = Instant::now();
        self.argon2
            .hash_password_into_with_memory(b"correct horse battery staple", &salt, &mut out, &mut self.memory)
            .map_err(|e| e.to_string())?;
        let took = start.elapsed().as_micros() as u64;
        std::hint::black_box(out);
        Ok(took)
    }

    /// One hash to a PHC string with memory allocated for it; microseconds.
    pub fn hash_alloc_us(&mut self) -> Result<u64, String> {
        use argon2::password_hash::{PasswordHasher as _, SaltString};
        let salt = SaltString::encode_b64(&self.salt()).map_err(|e| e.to_string())?;
        let start = Instant::now();
        let hash = self
            .argon2
            .hash_password(b"correct horse battery staple", &salt)
            .map_err(|e| e.to_string())?
            .to_string();
        let took = start.elapsed().as_micros() as u64;
        std::hint::black_box(hash);
        Ok(took)
    }
}

fn argon2_cmd(args: &[String]) -> Result<Value, String> {
    let num = |i: usize| -> Result<u32, String> {
        args.get(i)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| "usage: bench-harness argon2 M T P RUNS".to_owned())
    };
    let (m, t, p, runs) = (num(0)?, num(1)?, num(2)?, num(3)?);
    let mut timer = Argon2Timer::new(m, t, p)?;
    timer.hash_us()?; // warm-up: first touch of the memory
    timer.hash_alloc_us()?;
    let (mut kept, mut alloc) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        kept.push(timer.hash_us()?);
        alloc.push(timer.hash_alloc_us()?);
    }
    Ok(json!({"m": m, "t": t, "p": p, "samples_us": kept, "alloc_samples_us": alloc}))
}

/// Nearest-rank percentile of sorted samples.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A small deterministic PRNG (xorshift64*) for shuffling; no dependency needed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}
