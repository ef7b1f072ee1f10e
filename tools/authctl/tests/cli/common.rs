//! The harness: the built binary with a clean environment, and a fresh table per test.

use std::process::{Command, Output, Stdio};

use gatehouse_core::domain::UserId;
use gatehouse_core::ports::Session;
use gatehouse_core::store::DynamoStore;

pub const BIN: &str = env!("CARGO_BIN_EXE_authctl");

pub fn endpoint() -> String {
    std::env::var("GATEHOUSE_TEST_DYNAMODB_ENDPOINT").expect(
        "GATEHOUSE_TEST_DYNAMODB_ENDPOINT is not set: run these tests through `make test`, which starts the emulator",
    )
}

pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The binary with a clean, cheap environment: no inherited passwords or profiles, no terminal.
pub fn base(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .env_remove("AUTHCTL_PASSWORD")
        .env_remove("DEFAULT_ADMIN_EMAIL")
        .env_remove("DEFAULT_ADMIN_PASSWORD")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("PASSWORD_MIN_LENGTH")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("ARGON2_MEMORY_KIB", "64")
        .env("ARGON2_ITERATIONS", "1")
        .env("ARGON2_PARALLELISM", "1");
    cmd
}

pub fn out(cmd: &mut Command) -> Output {
    cmd.output().expect("authctl runs")
}

pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh table on the emulator, created through `authctl create-table`, and the core crate's
/// store over it.
pub struct Table {
    pub name: String,
    pub endpoint: String,
    pub store: DynamoStore,
}

impl Table {
    pub async fn new(test: &str) -> Self {
        let endpoint = endpoint();
        let name = format!("authctl-{test}-{}", UserId::generate().as_str().replace('-', ""));
        let sdk = gatehouse_core::aws::local_aws_config(&endpoint).await;
        let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), name.clone());
        let t = Self { name, endpoint, store };
        let o = t.run(&["create-table"], &[]);
        assert_eq!(code(&o), 0, "create-table: {}", stderr(&o));
        t
    }

    /// The binary ([`base`]) on this table, with `env` on top.
    pub fn cmd(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = base(args);
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint).env("TABLE_NAME", &self.name);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        out(&mut self.cmd(args, env))
    }
}

/// A live session of `user`, an hour from its end.
pub fn session(user: &UserId, id: &str) -> Session {
    let now = now();
    Session {
        user_id: user.clone(),
        id: id.to_owned(),
        current_jti: format!("jti-{id}"),
        counter: 0,
        previous_jti: None,
        rotated_at: None,
        created_at: now,
        last_used_at: now,
        user_agent: None,
        ip: None,
        expires_at: now + 3600,
    }
}
