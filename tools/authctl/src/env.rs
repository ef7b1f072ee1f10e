//! What authctl reads from the environment: the table, hashing cost, the password policy. The
//! full service Settings are not needed (no JWT keys, no sender address).

use gatehouse_core::config::Argon2Settings;
use gatehouse_core::password::{PasswordHasher, PasswordPolicy};
use gatehouse_core::store::DynamoStore;

use crate::Fail;

/// How long audit entries are kept (`AUDIT_RETENTION`, as the functions read it; default 90 days).
pub fn audit_retention() -> Result<std::time::Duration, Fail> {
    let Some(raw) = var("AUDIT_RETENTION") else {
        return Ok(std::time::Duration::from_secs(90 * 86_400));
    };
    match gatehouse_core::config::parse_duration(&raw) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err(Fail::usage("AUDIT_RETENTION: must be longer than zero")),
        Err(why) => Err(Fail::usage(format!("AUDIT_RETENTION: {why}"))),
    }
}

/// Records what a command did in the audit trail (`via: authctl`, no actor), as the API records
/// its own actions. A failed write does not fail the command: it is reported on stderr.
pub async fn audit(store: &DynamoStore, event: gatehouse_core::services::audit::Event) {
    use gatehouse_core::services::audit;
    let retention = audit_retention().unwrap_or(std::time::Duration::from_secs(90 * 86_400));
    let name = event.name;
    if !audit::within(audit::authctl_origin(), audit::record_in(store, now(), retention, event)).await {
        eprintln!("authctl: warning: the audit entry of {name} could not be written");
    }
}

/// A variable's value, if set and not empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn number(name: &str, default: u32, min: u32, max: u32) -> Result<u32, Fail> {
    let Some(raw) = var(name) else {
        return Ok(default);
    };
    match raw.trim().parse::<u32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(Fail::usage(format!("{name}: must be a whole number between {min} and {max}"))),
    }
}

pub fn table_name() -> String {
    var("TABLE_NAME").unwrap_or_else(|| "gatehouse".to_owned())
}

/// Whether a local endpoint (the emulator) is configured.
pub fn local_endpoint() -> Option<String> {
    var("AWS_ENDPOINT_URL").or_else(|| var("AWS_ENDPOINT_URL_DYNAMODB"))
}

pub fn hasher() -> Result<PasswordHasher, Fail> {
    let cfg = Argon2Settings {
        memory_kib: number("ARGON2_MEMORY_KIB", 19_456, 8, 4 * 1024 * 1024)?,
        iterations: number("ARGON2_ITERATIONS", 2, 1, 100)?,
        parallelism: number("ARGON2_PARALLELISM", 1, 1, 16)?,
    };
    if cfg.memory_kib < 8 * cfg.parallelism {
        return Err(Fail::usage("ARGON2_MEMORY_KIB: must be at least 8 × ARGON2_PARALLELISM"));
    }
    PasswordHasher::new(cfg).map_err(|e| Fail::usage(format!("ARGON2_*: {e}")))
}

pub fn policy() -> Result<PasswordPolicy, Fail> {
    Ok(PasswordPolicy { min_length: number("PASSWORD_MIN_LENGTH", 8, 1, 4096)? as usize })
}

/// The store over the table, through the usual AWS configuration chain. No network call yet.
pub async fn store() -> Result<DynamoStore, Fail> {
    let sdk = gatehouse_core::aws::aws_config().await;
    if sdk.region().is_none_or(|r| r.as_ref().trim().is_empty()) {
        return Err(Fail::usage("no AWS region configured: set AWS_REGION (or a profile with a region)"));
    }
    Ok(DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), table_name()))
}

/// Unix seconds now.
pub fn now() -> i64 {
    use gatehouse_core::ports::Clock;
    gatehouse_core::ports::SystemClock.now()
}
