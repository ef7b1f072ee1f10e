//! authctl's commands end to end: the built binary against the local emulator, one table per
//! test, checked through the core crate's store.

use std::process::{Command, Output, Stdio};

use gatehouse_core::domain::{CodePurpose, Email, Password, User, UserId};
use gatehouse_core::password::PasswordHasher;
use gatehouse_core::ports::{CodeRecord, CodeStore, GiveBack, SessionStore, UserStore};
use gatehouse_core::store::DynamoStore;

use crate::common::{base, code, endpoint, now, out, session, stderr, stdout, Table, BIN};

const GOOD: &str = "correct horse battery";

/// What only these tests ask of a table.
impl Table {
    async fn user(&self, email: &str) -> Option<User> {
        self.store.find_user_by_email(&Email::parse(email).unwrap(), now()).await.unwrap()
    }

    /// `listusers --json`, parsed.
    fn list(&self) -> Vec<serde_json::Value> {
        let o = self.run(&["listusers", "--json"], &[]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }
}

fn hasher() -> PasswordHasher {
    PasswordHasher::new(gatehouse_core::config::Argon2Settings { memory_kib: 64, iterations: 1, parallelism: 1 })
        .unwrap()
}

async fn verifies(user: &User, password: &str) -> bool {
    hasher().verify(&Password::parse(password.to_owned()).unwrap(), Some(&user.password_hash)).await
}

#[test]
fn help_names_every_command_and_the_exit_codes() {
    let o = out(&mut base(&["--help"]));
    assert_eq!(code(&o), 0);
    let help = stdout(&o);
    for c in [
        "createuser",
        "createstaffuser",
        "createsuperuser",
        "activateuser",
        "initdefaultadmin",
        "changepassword",
        "listusers",
        "deactivate",
        "logout-everywhere",
        "mfa-reset",
        "create-table",
    ] {
        assert!(help.contains(c), "{c} missing from --help");
        let o = out(&mut base(&[c, "--help"]));
        assert_eq!(code(&o), 0, "{c} --help");
        assert!(stdout(&o).contains(&format!("authctl {c}")), "{c} --help");
    }
    // The exit codes scripts rely on, each with what it means.
    for line in ["  0  done", "  1  runtime or store error", "  2  usage error", "  3  refused"] {
        assert!(help.contains(line), "exit code line {line:?} missing from --help: {help}");
    }
    assert!(stdout(&out(&mut base(&["createuser", "-h"]))).contains("--email EMAIL"));
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for args in [&[][..], &["nope"][..], &["listusers", "--nope"][..], &["deactivate", "--email"][..]] {
        let o = out(&mut base(args));
        assert_eq!(code(&o), 2, "{args:?}");
        assert!(stderr(&o).contains("authctl: "), "{args:?}: {}", stderr(&o));
    }
    let o = out(&mut base(&["deactivate", "--email", "not-an-email"]));
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("Enter a valid email address."));
    let o = out(&mut base(&["deactivate"]));
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--email is required"));
}

#[test]
fn create_table_is_refused_without_a_local_endpoint() {
    let o = out(&mut base(&["create-table"]));
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("local emulator only"), "{}", stderr(&o));
}

#[tokio::test]
async fn createsuperuser_with_flags_then_listusers_shows_it() {
    let t = Table::new("super").await;
    let o = t.run(
        &[
            "createsuperuser",
            "--email",
            "Ada@Example.com",
            "--password",
            GOOD,
            "--username",
            "ada",
            "--first-name",
            "Ada",
            "--last-name",
            "Lovelace",
        ],
        &[],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("created superuser Ada@example.com"));

    let o = t.run(&["listusers"], &[]);
    assert_eq!(code(&o), 0);
    let lines: Vec<String> = stdout(&o).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let fields: Vec<&str> = lines[0].split('\t').collect();
    assert!(UserId::parse(fields[0]).is_some());
    assert_eq!(&fields[1..], ["Ada@example.com", "active=true", "staff=true", "superuser=true"]);
    assert!(stderr(&o).contains("1 user"));

    let users = t.list();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["email"], "Ada@example.com");
    assert_eq!(users[0]["username"], "ada");
    assert_eq!(users[0]["first_name"], "Ada");
    assert_eq!(users[0]["is_superuser"], true);

    let user = t.user("ada@example.com").await.unwrap();
    assert!(user.is_active && user.is_staff && user.is_superuser);
    assert_eq!(user.expires_at, None);
    assert_eq!(user.version, 1);
    assert!((user.date_joined - now()).abs() < 120);
    assert_eq!(user.tokens_valid_after, user.date_joined);
    assert!(verifies(&user, GOOD).await);
}

#[tokio::test]
async fn createuser_and_createstaffuser_set_their_flags_and_take_the_password_from_the_environment() {
    let t = Table::new("roles").await;
    let o = t.run(&["createuser", "--email", "u@example.com"], &[("AUTHCTL_PASSWORD", GOOD)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = t.run(&["createstaffuser", "--email", "s@example.com"], &[("AUTHCTL_PASSWORD", GOOD)]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let u = t.user("u@example.com").await.unwrap();
    assert!(u.is_active && !u.is_staff && !u.is_superuser);
    assert!(verifies(&u, GOOD).await);
    let s = t.user("s@example.com").await.unwrap();
    assert!(s.is_active && s.is_staff && !s.is_superuser);
}

#[tokio::test]
async fn initdefaultadmin_twice_creates_exactly_one_admin() {
    let t = Table::new("initadmin").await;
    let env = [("DEFAULT_ADMIN_EMAIL", "root@example.com"), ("DEFAULT_ADMIN_PASSWORD", GOOD)];
    let first = t.run(&["initdefaultadmin"], &env);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert!(stdout(&first).contains("created superuser root@example.com"));
    let second = t.run(&["initdefaultadmin"], &env);
    assert_eq!(code(&second), 0, "{}", stderr(&second));
    assert!(stdout(&second).contains("nothing to do"), "{}", stdout(&second));
    // Another address: still nothing, a superuser exists.
    let other = t.run(&["initdefaultadmin"], &[("DEFAULT_ADMIN_EMAIL", "other@example.com"), env[1]]);
    assert_eq!(code(&other), 0);
    assert!(stdout(&other).contains("nothing to do"));

    let users = t.list();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0]["email"], "root@example.com");
    assert_eq!(users[0]["is_superuser"], true);
    assert_eq!(users[0]["is_active"], true);
    assert!(verifies(&t.user("root@example.com").await.unwrap(), GOOD).await);
}

#[tokio::test]
async fn initdefaultadmin_leaves_an_existing_account_alone_and_needs_its_variables() {
    let t = Table::new("initexisting").await;
    let o = t.run(&["createuser", "--email", "root@example.com", "--password", GOOD], &[]);
    assert_eq!(code(&o), 0);
    let env = [("DEFAULT_ADMIN_EMAIL", "ROOT@example.com"), ("DEFAULT_ADMIN_PASSWORD", "another good one")];
    let o = t.run(&["initdefaultadmin"], &env);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("exists already; nothing to do"));
    let u = t.user("root@example.com").await.unwrap();
    assert!(!u.is_superuser, "not promoted");

    let o = t.run(&["initdefaultadmin"], &[("DEFAULT_ADMIN_PASSWORD", GOOD)]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("DEFAULT_ADMIN_EMAIL is not set"));
    let o = t.run(&["initdefaultadmin"], &[("DEFAULT_ADMIN_EMAIL", "x@example.com")]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("DEFAULT_ADMIN_PASSWORD is not set"));
    let o = t.run(&["initdefaultadmin"], &[("DEFAULT_ADMIN_EMAIL", "x@example.com"), ("DEFAULT_ADMIN_PASSWORD", "1")]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("too short"));
    assert_eq!(t.list().len(), 1);
}

#[tokio::test]
async fn a_taken_email_or_username_exits_3() {
    let t = Table::new("dup").await;
    let o = t.run(&["createuser", "--email", "dup@example.com", "--password", GOOD, "--username", "dup"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = t.run(&["createsuperuser", "--email", "DUP@example.com", "--password", GOOD], &[]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("exists already"), "{}", stderr(&o));
    let o = t.run(&["createuser", "--email", "other@example.com", "--password", GOOD, "--username", "DUP"], &[]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("username is taken"), "{}", stderr(&o));
    let users = t.list();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["is_superuser"], false);
}

#[tokio::test]
async fn a_password_the_policy_refuses_exits_2_listing_every_failure() {
    let t = Table::new("policy").await;
    let o = t.run(&["createuser", "--email", "p@example.com", "--password", "1234"], &[]);
    assert_eq!(code(&o), 2);
    let err = stderr(&o);
    for msg in ["too short", "too common", "entirely numeric"] {
        assert!(err.contains(msg), "{msg}: {err}");
    }
    assert_eq!(err.lines().count(), 3, "{err}");
    let o = t.run(&["createuser", "--email", "lovelace@example.com", "--password", "lovelace1"], &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("too similar to the email address"));
    let o = t
        .run(&["createuser", "--email", "m@example.com", "--password", "abcdefghij"], &[("PASSWORD_MIN_LENGTH", "12")]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("at least 12 characters"));
    assert!(t.list().is_empty());
}

#[tokio::test]
async fn without_a_password_or_a_terminal_creation_fails_with_2() {
    let t = Table::new("nopass").await;
    let o = t.run(&["createsuperuser", "--email", "n@example.com"], &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("no password given"), "{}", stderr(&o));
    assert!(t.list().is_empty());
}

/// Moves `user`'s `tokens_valid_after` far into the past (an account made long ago), so that a
/// command that failed to move it cannot pass for one that did: the account as now stored.
async fn aged(store: &DynamoStore, user: &User) -> User {
    let mut old = user.clone();
    old.tokens_valid_after = user.date_joined - 400 * 86_400;
    store.update_user(user, &old, now()).await.unwrap();
    let stored = store.get_user(&user.id, now()).await.unwrap().unwrap();
    assert_eq!(stored.tokens_valid_after, old.tokens_valid_after);
    stored
}

/// `tokens_valid_after` is the command's own reading of the clock: not before it `started`, not
/// after now. (Every token issued before it is refused, `functions/tests/api/sessions.rs` shows.)
#[track_caller]
fn assert_stamped_now(user: &User, started: i64) {
    let ended = now();
    assert!(
        (started..=ended).contains(&user.tokens_valid_after),
        "tokens_valid_after {} is not the time of the command, {started}..={ended}",
        user.tokens_valid_after
    );
}

#[tokio::test]
async fn changepassword_sets_the_hash_and_revokes_sessions() {
    let t = Table::new("chpw").await;
    assert_eq!(code(&t.run(&["createuser", "--email", "c@example.com", "--password", GOOD], &[])), 0);
    let store = t.store.clone();
    let before = aged(&store, &t.user("c@example.com").await.unwrap()).await;
    store.create_session(&session(&before.id, "s1"), None, &GiveBack::default()).await.unwrap();

    let started = now();
    let o = t.run(&["changepassword", "--email", "C@example.com"], &[("AUTHCTL_PASSWORD", "a brand new secret")]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let after = t.user("c@example.com").await.unwrap();
    assert!(verifies(&after, "a brand new secret").await);
    assert!(!verifies(&after, GOOD).await);
    assert_eq!(after.version, before.version + 1);
    assert_stamped_now(&after, started);
    assert!(store.list_sessions(&after.id, now()).await.unwrap().is_empty());

    let o = t.run(&["changepassword", "--email", "c@example.com", "--password", "123"], &[]);
    assert_eq!(code(&o), 2);
    let o = t.run(&["changepassword", "--email", "ghost@example.com", "--password", GOOD], &[]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("no account has the email ghost@example.com"));
}

#[tokio::test]
async fn deactivate_and_logout_everywhere_revoke_every_session() {
    let t = Table::new("deact").await;
    for email in ["d@example.com", "l@example.com"] {
        assert_eq!(code(&t.run(&["createuser", "--email", email, "--password", GOOD], &[])), 0);
    }
    let store = t.store.clone();
    let d = aged(&store, &t.user("d@example.com").await.unwrap()).await;
    let l = aged(&store, &t.user("l@example.com").await.unwrap()).await;
    for (u, sid) in [(&d, "a"), (&d, "b"), (&l, "c")] {
        store.create_session(&session(&u.id, sid), None, &GiveBack::default()).await.unwrap();
    }

    let started = now();
    let o = t.run(&["logout-everywhere", "--email", "l@example.com"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let l2 = t.user("l@example.com").await.unwrap();
    assert!(l2.is_active);
    assert_stamped_now(&l2, started);
    assert_eq!(t.user("d@example.com").await.unwrap().tokens_valid_after, d.tokens_valid_after, "others keep theirs");
    assert_eq!(l2.version, l.version + 1);
    assert!(store.list_sessions(&l.id, now()).await.unwrap().is_empty());
    assert_eq!(store.list_sessions(&d.id, now()).await.unwrap().len(), 2, "other users keep theirs");

    let started = now();
    let o = t.run(&["deactivate", "--email", "d@example.com"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let d2 = t.user("d@example.com").await.unwrap();
    assert!(!d2.is_active);
    assert_stamped_now(&d2, started);
    assert!(store.list_sessions(&d.id, now()).await.unwrap().is_empty());
    let o = t.run(&["deactivate", "--email", "d@example.com"], &[]);
    assert_eq!(code(&o), 0, "again: {}", stderr(&o));
    let o = t.run(&["deactivate", "--email", "ghost@example.com"], &[]);
    assert_eq!(code(&o), 3);

    // And back: activateuser re-enables it.
    let o = t.run(&["activateuser", "--email", "d@example.com"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(t.user("d@example.com").await.unwrap().is_active);
}

/// An account as registration leaves it: inactive, expiring, with an emailed activation code.
async fn registered(t: &Table, email: &str, code: &str) -> User {
    let now = now();
    let user = User {
        password_hash: hasher().hash(&Password::parse(GOOD.to_owned()).unwrap()).await.unwrap(),
        is_active: false,
        date_joined: now,
        tokens_valid_after: now,
        expires_at: Some(now + 86_400),
        ..User::fixture(email)
    };
    let record = CodeRecord {
        user_id: user.id.clone(),
        purpose: CodePurpose::Activation,
        hash: gatehouse_core::secrets::sha256_hex(code),
        expires_at: now + 3600,
        attempts: 0,
        data: None,
        spent: false,
    };
    t.store.create_user(&user, Some(&record), now).await.unwrap();
    user
}

#[tokio::test]
async fn activateuser_clears_the_expiry_and_kills_the_pending_link() {
    let t = Table::new("activate").await;
    let u = registered(&t, "direct@example.com", "123456").await;
    let o = t.run(&["activateuser", "--email", "direct@example.com"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let u2 = t.user("direct@example.com").await.unwrap();
    assert!(u2.is_active);
    assert_eq!(u2.expires_at, None);
    // The emailed code was replaced by authctl's own, now spent: the link can do nothing more.
    let code_left = t.store.get_code(&u.id, CodePurpose::Activation, now()).await.unwrap();
    assert!(code_left.is_some_and(|c| c.spent && c.hash != gatehouse_core::secrets::sha256_hex("123456")));
    let o = t.run(&["activateuser", "--email", "direct@example.com"], &[]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("active already"));
    // --code is gone: a usage error.
    registered(&t, "coded@example.com", "654321").await;
    let o = t.run(&["activateuser", "--email", "coded@example.com", "--code", "654321"], &[]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(!t.user("coded@example.com").await.unwrap().is_active);

    let o = t.run(&["activateuser", "--email", "ghost@example.com"], &[]);
    assert_eq!(code(&o), 3);
}

#[tokio::test]
async fn listusers_pages_through_many_users_with_progress() {
    let t = Table::new("many").await;
    let store = t.store.clone();
    let hash = hasher().hash(&Password::parse(GOOD.to_owned()).unwrap()).await.unwrap();
    let now = now();
    for i in 0..230 {
        let user = User {
            password_hash: hash.clone(),
            date_joined: now,
            tokens_valid_after: now,
            ..User::fixture(&format!("user{i}@example.com"))
        };
        store.create_user(&user, None, now).await.unwrap();
    }
    let o = t.run(&["listusers"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let lines = stdout(&o);
    assert_eq!(lines.lines().count(), 230);
    let mut emails: Vec<&str> = lines.lines().map(|l| l.split('\t').nth(1).unwrap()).collect();
    emails.sort_unstable();
    emails.dedup();
    assert_eq!(emails.len(), 230, "no user twice");
    let err = stderr(&o);
    assert!(err.contains("100 users so far") && err.contains("200 users so far"), "{err}");
    assert!(err.contains("230 users"), "{err}");
}

/// authctl on a pseudo-terminal (through util-linux `script`), answering its prompts as they come.
struct Pty {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Pty {
    fn spawn(t: &Table, args: &[&str]) -> Self {
        let line = std::iter::once(BIN).chain(args.iter().copied()).collect::<Vec<_>>().join(" ");
        let cmd = t.cmd(&[], &[]);
        let mut script = Command::new("script");
        script.args(["-qec", &line, "/dev/null"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => script.env(k, v),
                None => script.env_remove(k),
            };
        }
        let mut child = script.spawn().expect("util-linux script runs");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut buf = [0u8; 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Self { child, stdin, seen }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().unwrap()).into_owned()
    }

    /// Waits until the terminal has shown `needle` `times` times in all.
    fn expect(&self, needle: &str, times: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.text().matches(needle).count() < times {
            assert!(std::time::Instant::now() < deadline, "waited for {needle:?} x{times}; saw {:?}", self.text());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn answer(&mut self, line: &str) {
        use std::io::Write;
        self.stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn finish(mut self) -> (i32, String) {
        let status = self.child.wait().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        (status.code().unwrap_or(-1), self.text())
    }
}

/// util-linux `script` is required, not optional: without it the prompts would go untested while
/// the test still passed. `make test` installs it (tools/lib.sh, `ensure_script`).
fn require_script() {
    let found = Command::new("script").arg("--version").output();
    match found {
        Ok(o) if o.status.success() && String::from_utf8_lossy(&o.stdout).contains("util-linux") => {}
        Ok(o) => panic!(
            "`script --version` is not util-linux's script (exit {:?}, said {:?}): install util-linux's \
             (Debian: apt-get install bsdutils), as `make test` does",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).trim()
        ),
        Err(e) => panic!(
            "util-linux `script` is needed to drive authctl on a pseudo-terminal and could not be run ({e}): \
             install it (Debian: apt-get install bsdutils), as `make test` does"
        ),
    }
}

#[tokio::test]
async fn interactive_prompts_through_a_pseudo_terminal_mask_and_confirm_the_password() {
    require_script();
    let t = Table::new("pty").await;

    // Email asked for, password entered twice; a mismatch asks again; nothing is echoed.
    let mut pty = Pty::spawn(&t, &["createsuperuser"]);
    pty.expect("Email: ", 1);
    pty.answer("tty@example.com");
    pty.expect("Password: ", 1);
    pty.answer("first try words");
    pty.expect("Password (again): ", 1);
    pty.answer("something else");
    pty.expect("differ", 1);
    pty.expect("Password: ", 2);
    pty.answer("typed on a terminal");
    pty.expect("Password (again): ", 2);
    pty.answer("typed on a terminal");
    let (code, screen) = pty.finish();
    assert_eq!(code, 0, "{screen}");
    assert!(screen.contains("created superuser tty@example.com"), "{screen}");
    assert!(!screen.contains("typed on a terminal") && !screen.contains("first try"), "echoed: {screen}");
    let user = t.user("tty@example.com").await.unwrap();
    assert!(user.is_superuser);
    assert!(verifies(&user, "typed on a terminal").await);

    // A refused password is explained and asked for again; three refusals give up with 2.
    let mut pty = Pty::spawn(&t, &["changepassword", "--email", "tty@example.com"]);
    for round in 1..=3 {
        pty.expect("Password: ", round);
        pty.answer("12345");
        pty.expect("Password (again): ", round);
        pty.answer("12345");
        pty.expect("entirely numeric", round);
    }
    let (code, screen) = pty.finish();
    assert_eq!(code, 2, "{screen}");
    assert!(verifies(&t.user("tty@example.com").await.unwrap(), "typed on a terminal").await);
}

#[test]
fn store_errors_exit_1_with_a_hint() {
    let mut cmd = base(&["listusers"]);
    cmd.env("AWS_ENDPOINT_URL", endpoint()).env("TABLE_NAME", "authctl-no-such-table");
    let o = out(&mut cmd);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("does the table exist?"), "{}", stderr(&o));
    let o = out(base(&["listusers"]).env("AWS_ENDPOINT_URL", "http://127.0.0.1:9").env("TABLE_NAME", "x"));
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("is the emulator running at http://127.0.0.1:9?"), "{}", stderr(&o));
}

/// `KEY=VALUE` lines of a jwt-key run, by key.
fn parameters(o: &Output) -> std::collections::HashMap<String, String> {
    assert_eq!(code(o), 0, "{}", stderr(o));
    stdout(o).lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

#[tokio::test]
async fn jwt_key_makes_a_key_then_a_pending_version_and_prints_what_the_template_needs() {
    let t = Table::new("jwtkey").await;
    let secret = format!("gatehouse/test/{}", UserId::generate().as_str());
    let first = parameters(&t.run(&["jwt-key", "--secret", &secret, "--kid", "k1"], &[]));
    let arn = first["JwtSigningKeySecretArn"].clone();
    assert!(arn.starts_with("arn:aws:secretsmanager:us-east-1:") && arn.contains(&secret), "{arn}");
    assert!(first["JwtPublicKeys"].starts_with("k1="));
    let o = t.run(&["jwt-key", "--secret", &secret, "--kid", "k1"], &[]);
    assert!(!stdout(&o).contains("PRIVATE KEY") && !stderr(&o).contains("PRIVATE KEY"), "the key is never printed");

    // What it printed is a configuration the functions accept, and the secret holds that key.
    let settings = |public: &str, version: &str| {
        let vars: std::collections::HashMap<String, String> = [
            ("EMAIL_FROM", "no-reply@example.com"),
            ("JWT_ALGORITHM", "EdDSA"),
            ("JWT_SIGNING_KEY_SECRET_ARN", arn.as_str()),
            ("JWT_SIGNING_KEY_SECRET_VERSION", version),
            ("JWT_PUBLIC_KEYS", public),
            ("CODE_KEY_SECRET_ARN", arn.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        gatehouse_core::Settings::from_map(&vars).unwrap()
    };
    settings(&first["JwtPublicKeys"], &first["JwtSigningKeyVersionId"]);
    let sdk = gatehouse_core::aws::local_aws_config(&t.endpoint).await;
    let sm = aws_sdk_secretsmanager::Client::new(&sdk);
    let current = sm.get_secret_value().secret_id(&arn).send().await.unwrap();
    assert_eq!(current.version_id(), Some(first["JwtSigningKeyVersionId"].as_str()));
    let shown = parameters(&t.run(&["jwt-key", "--secret", &arn, "--show", "--kid", "k1"], &[]));
    assert_eq!(shown, first);

    // A rotation: a new version, pending; AWSCURRENT stays where it was.
    let o = t.run(&["jwt-key", "--secret", &secret, "--kid", "k2"], &[]);
    assert!(stderr(&o).contains("two deploys"), "{}", stderr(&o));
    let second = parameters(&o);
    assert_eq!(second["JwtSigningKeySecretArn"], arn);
    assert_ne!(second["JwtSigningKeyVersionId"], first["JwtSigningKeyVersionId"]);
    assert_ne!(second["JwtPublicKeys"].split_once('=').unwrap().1, first["JwtPublicKeys"].split_once('=').unwrap().1);
    let current = sm.get_secret_value().secret_id(&arn).send().await.unwrap();
    assert_eq!(current.version_id(), Some(first["JwtSigningKeyVersionId"].as_str()), "AWSCURRENT did not move");
    let version = second["JwtSigningKeyVersionId"].clone();
    let shown = parameters(&t.run(&["jwt-key", "--secret", &arn, "--show", "--version", &version, "--kid", "k2"], &[]));
    assert_eq!(shown, second);
    settings(&format!("{},{}", first["JwtPublicKeys"], second["JwtPublicKeys"]), &version);

    // Usage errors.
    assert_eq!(code(&t.run(&["jwt-key"], &[])), 2);
    assert_eq!(code(&t.run(&["jwt-key", "--secret", &secret, "--kid", "a,b"], &[])), 2);
    assert_eq!(code(&t.run(&["jwt-key", "--secret", &secret, "--version", "x"], &[])), 2);
}

#[tokio::test]
async fn mfa_reset_removes_the_second_factor_and_every_session() {
    use gatehouse_core::domain::{RecoveryCodes, TotpFactor};
    use gatehouse_core::ports::MfaStore;
    let t = Table::new("mfareset").await;
    assert_eq!(code(&t.run(&["createuser", "--email", "m@example.com", "--password", GOOD], &[])), 0);
    let store = t.store.clone();
    let u = aged(&store, &t.user("m@example.com").await.unwrap()).await;
    let o = t.run(&["mfa-reset", "--email", "m@example.com"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("nothing to do"), "{}", stdout(&o));
    assert_eq!(t.user("m@example.com").await.unwrap().version, u.version, "nothing written");

    let factor = TotpFactor {
        user_id: u.id.clone(),
        sealed_secret: "sealed".into(),
        confirmed: false,
        created_at: now(),
        last_step: None,
        expires_at: Some(now() + 600),
    };
    assert!(store.put_pending_totp(&factor).await.unwrap());
    let codes = RecoveryCodes { user_id: Some(u.id.clone()), macs: ["m1".to_owned()].into(), created_at: now() };
    assert!(store.confirm_totp(&u.id, "sealed", 1, &codes, now()).await.unwrap());
    store.create_session(&session(&u.id, "a"), None, &GiveBack::default()).await.unwrap();
    assert!(t.user("m@example.com").await.unwrap().mfa_enabled);

    let started = now();
    let o = t.run(&["mfa-reset", "--email", "m@example.com"], &[]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let after = t.user("m@example.com").await.unwrap();
    assert!(!after.mfa_enabled);
    assert_stamped_now(&after, started);
    let mfa = store.get_mfa(&u.id, now()).await.unwrap();
    assert_eq!((mfa.totp, mfa.recovery.macs.len()), (None, 0));
    assert!(store.list_sessions(&u.id, now()).await.unwrap().is_empty());
    let o = t.run(&["mfa-reset", "--email", "ghost@example.com"], &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
}
