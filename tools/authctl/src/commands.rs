//! The commands themselves, over the core crate's store traits.

use gatehouse_core::services::audit::{self, Event};
use gatehouse_core::services::me;
use std::io::{BufRead, IsTerminal, Write};

use gatehouse_core::domain::{CodePurpose, Email, Password, User, UserId, Username};
use gatehouse_core::password::PasswordPolicy;
use gatehouse_core::ports::{ActivateError, CodeRecord, CodeStore, CreateUserError, SystemClock, UserStore};
use gatehouse_core::services::sessions::revoke_user;
use gatehouse_core::services::ServiceError;
use gatehouse_core::store::dynamo::doctor;
use gatehouse_core::store::DynamoStore;

use crate::args::Args;
use crate::env::{self, now};
use crate::Fail;

/// Longest first / last name accepted (Django's).
const NAME_MAX: usize = 150;
/// Users per store page.
const PAGE: usize = 100;
/// Prompts for a password before giving up.
const PROMPTS: usize = 3;

pub async fn run(name: &str, args: &Args) -> Result<(), Fail> {
    match name {
        "createuser" => create(args, Role::User).await,
        "createstaffuser" => create(args, Role::Staff).await,
        "createsuperuser" => create(args, Role::Superuser).await,
        "activateuser" => activate(args).await,
        "initdefaultadmin" => init_default_admin().await,
        "changepassword" => change_password(args).await,
        "listusers" => list_users(args).await,
        "deactivate" => deactivate(args).await,
        "logout-everywhere" => logout_everywhere(args).await,
        "mfa-reset" => mfa_reset(args).await,
        "create-table" => create_table().await,
        "jwt-key" => crate::jwt_key::run(args).await,
        "doctor" => doctor(args).await,
        "import-django" => crate::django::run(args).await,
        // The registry and grant commands (perms.rs), or an unknown command.
        other => crate::perms::run(other, args).await,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    User,
    Staff,
    Superuser,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Staff => "staff user",
            Role::Superuser => "superuser",
        }
    }
}

fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

fn parse_email(raw: &str) -> Result<Email, Fail> {
    Email::parse(raw).map_err(|msg| Fail::usage(format!("email '{}': {msg}", raw.trim())))
}

/// `--email`, or on a terminal, asked for.
pub(crate) fn email_arg(args: &Args) -> Result<Email, Fail> {
    if let Some(raw) = args.value("email") {
        return parse_email(raw);
    }
    if !stdin_is_terminal() {
        return Err(Fail::usage("--email is required"));
    }
    eprint!("Email: ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| Fail::runtime(format!("reading the email: {e}")))?;
    if line.trim().is_empty() {
        return Err(Fail::usage("an email is required"));
    }
    parse_email(&line)
}

pub(crate) fn not_found(email: &Email) -> Fail {
    Fail::refused(format!("no account has the email {email}"))
}

/// Every policy failure as its own line.
fn refused_password(failures: Vec<String>) -> Fail {
    Fail { code: crate::EXIT_USAGE, lines: failures.into_iter().map(|f| format!("password refused: {f}")).collect() }
}

/// The password from `--password`, `AUTHCTL_PASSWORD`, or a masked prompt entered twice, checked
/// against the policy with the user's own attributes. Prompts again (a few times) on a mismatch
/// or a refused password; without a terminal, fails at once.
fn obtain_password(args: &Args, policy: &PasswordPolicy, attributes: &[(&str, &str)]) -> Result<Password, Fail> {
    let given = args.value("password").map(str::to_owned).or_else(|| env::var("AUTHCTL_PASSWORD"));
    if let Some(raw) = given {
        let password = Password::parse(raw).map_err(|msg| Fail::usage(format!("password refused: {msg}")))?;
        let failures = policy.check(&password, attributes);
        return if failures.is_empty() { Ok(password) } else { Err(refused_password(failures)) };
    }
    if !stdin_is_terminal() {
        return Err(Fail::usage(
            "no password given: use --password or AUTHCTL_PASSWORD, or run on a terminal to be asked",
        ));
    }
    let read = |prompt: &str| {
        rpassword::prompt_password(prompt).map_err(|e| Fail::runtime(format!("reading the password: {e}")))
    };
    let mut last = Fail::usage("no password entered");
    for _ in 0..PROMPTS {
        let first = read("Password: ")?;
        let second = read("Password (again): ")?;
        if first != second {
            eprintln!("Error: the two passwords differ.");
            last = Fail::usage("the two passwords differ");
            continue;
        }
        let password = match Password::parse(first) {
            Ok(p) => p,
            Err(msg) => {
                eprintln!("Error: {msg}");
                last = Fail::usage(format!("password refused: {msg}"));
                continue;
            }
        };
        let failures = policy.check(&password, attributes);
        if failures.is_empty() {
            return Ok(password);
        }
        for f in &failures {
            eprintln!("Error: {f}");
        }
        last = refused_password(failures);
    }
    Err(last)
}

/// The user's own attributes the password must not resemble, as the registration checks them.
fn attributes<'a>(
    email: &'a Email,
    username: Option<&'a Username>,
    first: &'a str,
    last: &'a str,
) -> Vec<(&'static str, &'a str)> {
    let mut attrs = vec![
        ("username", username.map(|u| u.as_str()).unwrap_or("")),
        ("first name", first),
        ("last name", last),
        ("email address", email.as_str()),
    ];
    attrs.retain(|(_, v)| !v.is_empty());
    attrs
}

fn name_arg(args: &Args, name: &str) -> Result<String, Fail> {
    let value = args.value(name).unwrap_or("").trim().to_owned();
    if value.chars().count() > NAME_MAX {
        return Err(Fail::usage(format!("--{name}: at most {NAME_MAX} characters")));
    }
    Ok(value)
}

/// A new active account with the given role; policy and uniqueness as at registration.
async fn new_user(
    store: &DynamoStore,
    email: Email,
    username: Option<Username>,
    first_name: String,
    last_name: String,
    password: &Password,
    role: Role,
) -> Result<Result<User, CreateUserError>, Fail> {
    let password_hash = env::hasher()?.hash(password).await.map_err(|e| Fail::runtime(e.to_string()))?;
    let now = now();
    let user = User {
        username,
        first_name,
        last_name,
        is_staff: role != Role::User,
        is_superuser: role == Role::Superuser,
        ..User::new(email, password_hash, now)
    };
    Ok(store.create_user(&user, None, now).await.map(|()| user))
}

async fn create(args: &Args, role: Role) -> Result<(), Fail> {
    let email = email_arg(args)?;
    let username = match args.value("username").filter(|u| !u.is_empty()) {
        Some(raw) => Some(Username::parse(raw).map_err(|msg| Fail::usage(format!("--username: {msg}")))?),
        None => None,
    };
    let first_name = name_arg(args, "first-name")?;
    let last_name = name_arg(args, "last-name")?;
    let policy = env::policy()?;
    env::hasher()?;
    let store = env::store().await?;
    // Before asking for a password: nobody wants to type one twice for nothing.
    if store.find_user_by_email(&email, now()).await?.is_some() {
        return Err(Fail::refused(format!("an account with the email {email} exists already")));
    }
    let attrs = attributes(&email, username.as_ref(), &first_name, &last_name);
    let password = obtain_password(args, &policy, &attrs)?;
    match new_user(&store, email.clone(), username, first_name, last_name, &password, role).await? {
        Ok(user) => {
            println!("created {} {} (id {})", role.label(), user.email, user.id);
            env::audit(&store, Event::new("admin.user_created").to(&user.id).changes(audit::created(&user))).await;
            Ok(())
        }
        Err(CreateUserError::EmailTaken) => {
            Err(Fail::refused(format!("an account with the email {email} exists already")))
        }
        Err(CreateUserError::UsernameTaken) => Err(Fail::refused("that username is taken")),
        Err(CreateUserError::IdentityTaken) => Err(Fail::runtime("identity claim conflict without an identity")),
        Err(CreateUserError::Store(e)) => Err(e.into()),
    }
}

async fn activate(args: &Args) -> Result<(), Fail> {
    let email = email_arg(args)?;
    let store = env::store().await?;
    let user = store.find_user_by_email(&email, now()).await?.ok_or_else(|| not_found(&email))?;
    if user.is_active {
        println!("{email} is active already; nothing to do");
        return Ok(());
    }
    let now = now();
    // A fresh single-use code, consumed at once by the same atomic activation the endpoint uses
    // (which also clears the account's expiry). Stored codes are MACs under the deployment's code
    // key, which authctl does not hold: this one is a random value that only this call knows.
    let hash = gatehouse_core::secrets::random_token().map_err(|e| Fail::runtime(e.to_string()))?;
    store
        .put_code(&CodeRecord {
            user_id: user.id.clone(),
            purpose: CodePurpose::Activation,
            hash: hash.clone(),
            expires_at: now + 300,
            attempts: 0,
            data: None,
            spent: false,
        })
        .await?;
    match store.activate(&user.id, &hash, now).await {
        Ok(()) => {
            println!("activated {email}");
            env::audit(&store, Event::new("account.activated").to(&user.id)).await;
            Ok(())
        }
        Err(ActivateError::InvalidCode) => Err(Fail::runtime("the activation did not take: run again")),
        Err(ActivateError::NotActivatable) => {
            println!("{email} is active already; nothing to do");
            Ok(())
        }
        Err(ActivateError::Store(e)) => Err(e.into()),
    }
}

/// Whether any live account is a superuser (a scan, page by page).
async fn any_superuser(store: &DynamoStore) -> Result<Option<User>, Fail> {
    let mut after: Option<UserId> = None;
    loop {
        let (page, next) = store.list_users(after.as_ref(), PAGE, now()).await?;
        if let Some(admin) = page.into_iter().find(|u| u.is_superuser) {
            return Ok(Some(admin));
        }
        match next {
            Some(n) => after = Some(n),
            None => return Ok(None),
        }
    }
}

async fn init_default_admin() -> Result<(), Fail> {
    let raw_email = env::var("DEFAULT_ADMIN_EMAIL").ok_or_else(|| Fail::usage("DEFAULT_ADMIN_EMAIL is not set"))?;
    let raw_password =
        env::var("DEFAULT_ADMIN_PASSWORD").ok_or_else(|| Fail::usage("DEFAULT_ADMIN_PASSWORD is not set"))?;
    let email = Email::parse(&raw_email).map_err(|msg| Fail::usage(format!("DEFAULT_ADMIN_EMAIL: {msg}")))?;
    let password =
        Password::parse(raw_password).map_err(|msg| Fail::usage(format!("DEFAULT_ADMIN_PASSWORD: {msg}")))?;
    let failures = env::policy()?.check(&password, &attributes(&email, None, "", ""));
    if !failures.is_empty() {
        return Err(refused_password(failures));
    }
    env::hasher()?;
    let store = env::store().await?;
    if let Some(admin) = any_superuser(&store).await? {
        println!("a superuser exists already ({}); nothing to do", admin.email);
        return Ok(());
    }
    if store.find_user_by_email(&email, now()).await?.is_some() {
        println!("an account with the email {email} exists already; nothing to do");
        return Ok(());
    }
    match new_user(&store, email.clone(), None, String::new(), String::new(), &password, Role::Superuser).await? {
        Ok(user) => {
            println!("created superuser {} (id {})", user.email, user.id);
            env::audit(&store, Event::new("admin.user_created").to(&user.id).changes(audit::created(&user))).await;
            Ok(())
        }
        Err(CreateUserError::EmailTaken) => {
            println!("an account with the email {email} exists already; nothing to do");
            Ok(())
        }
        Err(CreateUserError::UsernameTaken) => Err(Fail::runtime("username claim conflict without a username")),
        Err(CreateUserError::IdentityTaken) => Err(Fail::runtime("identity claim conflict without an identity")),
        Err(CreateUserError::Store(e)) => Err(e.into()),
    }
}

/// Applies `change` to the account with this email and revokes every token and session it holds,
/// by the same rule as the API (`services::sessions::revoke_user`: the optimistic-locking write
/// re-read and re-applied when somebody else wrote first, then the sessions removed), and records
/// it in the audit trail as `event`.
async fn revoke(
    store: &DynamoStore,
    email: &Email,
    event: &'static str,
    change: impl Fn(&mut User),
) -> Result<User, Fail> {
    let user = store.find_user_by_email(email, now()).await?.ok_or_else(|| not_found(email))?;
    let before = me::profile_fields(&user);
    let after = revoke_user(store, &SystemClock, user, change).await.map_err(|e| match e {
        ServiceError::NotFound => not_found(email),
        ServiceError::Unavailable(why) => Fail::runtime(format!("{why}; try again")),
        other => Fail::runtime(other.to_string()),
    })?;
    let changes = audit::changes(Some(&before), &me::profile_fields(&after));
    env::audit(store, Event::new(event).to(&after.id).changes(changes)).await;
    Ok(after)
}

async fn change_password(args: &Args) -> Result<(), Fail> {
    let email = email_arg(args)?;
    let policy = env::policy()?;
    let hasher = env::hasher()?;
    let store = env::store().await?;
    let user = store.find_user_by_email(&email, now()).await?.ok_or_else(|| not_found(&email))?;
    let attrs = attributes(&user.email, user.username.as_ref(), &user.first_name, &user.last_name);
    let password = obtain_password(args, &policy, &attrs)?;
    let hash = hasher.hash(&password).await.map_err(|e| Fail::runtime(e.to_string()))?;
    let user = revoke(&store, &email, "password.changed", |u| u.password_hash = hash.clone()).await?;
    println!("password changed for {}; its sessions were revoked", user.email);
    Ok(())
}

async fn deactivate(args: &Args) -> Result<(), Fail> {
    let email = email_arg(args)?;
    let store = env::store().await?;
    let now = now();
    // Marked deactivated (even an account never activated): no emailed link activates it again,
    // only an admin (`PATCH /auth/users/{id}/ {"is_active": true}`).
    let user = revoke(&store, &email, "admin.user_updated", |u| {
        u.is_active = false;
        u.deactivated_at = u.deactivated_at.or(Some(now));
    })
    .await?;
    println!("deactivated {}; its sessions were revoked", user.email);
    Ok(())
}

async fn logout_everywhere(args: &Args) -> Result<(), Fail> {
    let email = email_arg(args)?;
    let store = env::store().await?;
    let user = revoke(&store, &email, "sessions.revoked", |_| {}).await?;
    println!("signed {} out everywhere", user.email);
    Ok(())
}

/// Turns a user's second factors off (a lost phone and lost recovery codes): the factor and the
/// codes go, and every session ends, so whoever signed in with them is out.
async fn mfa_reset(args: &Args) -> Result<(), Fail> {
    use gatehouse_core::ports::MfaStore;
    let email = email_arg(args)?;
    let store = env::store().await?;
    let user = store.find_user_by_email(&email, now()).await?.ok_or_else(|| not_found(&email))?;
    if !store.get_mfa(&user.id, now()).await?.totp.is_some_and(|f| f.confirmed) && !user.mfa_enabled {
        println!("{} has no second factor; nothing to do", user.email);
        return Ok(());
    }
    if !store.remove_mfa(&user.id).await? {
        return Err(not_found(&email));
    }
    let user = revoke(&store, &email, "mfa.reset", |_| {}).await?;
    println!(
        "second factors of {} removed; its sessions were revoked (tell the owner: authctl sends no email)",
        user.email
    );
    Ok(())
}

fn user_line(u: &User, json: bool) -> String {
    if json {
        serde_json::json!({
            "id": u.id.as_str(),
            "email": u.email.as_str(),
            "username": u.username.as_ref().map(|n| n.as_str()),
            "first_name": u.first_name,
            "last_name": u.last_name,
            "is_active": u.is_active,
            "is_staff": u.is_staff,
            "is_superuser": u.is_superuser,
            "groups": u.groups,
            "date_joined": gatehouse_core::services::iso8601(u.date_joined),
            "last_login": u.last_login.map(gatehouse_core::services::iso8601),
        })
        .to_string()
    } else {
        format!("{}\t{}\tactive={}\tstaff={}\tsuperuser={}", u.id, u.email, u.is_active, u.is_staff, u.is_superuser)
    }
}

async fn list_users(args: &Args) -> Result<(), Fail> {
    let json = args.switch("json");
    let store = env::store().await?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut after: Option<UserId> = None;
    let mut count = 0usize;
    let mut progress_at = 100usize;
    loop {
        let (page, next) = store.list_users(after.as_ref(), PAGE, now()).await?;
        for u in &page {
            if let Err(e) = writeln!(out, "{}", user_line(u, json)) {
                // A closed pipe (`| head`) is the reader's choice, not an error.
                return if e.kind() == std::io::ErrorKind::BrokenPipe {
                    Ok(())
                } else {
                    Err(Fail::runtime(e.to_string()))
                };
            }
            count += 1;
            if count == progress_at {
                progress_at += 100;
                let _ = out.flush();
                eprintln!("authctl: {count} users so far...");
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    if let Err(e) = out.flush() {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(Fail::runtime(e.to_string()));
        }
    }
    eprintln!("authctl: {count} user{}", if count == 1 { "" } else { "s" });
    Ok(())
}

async fn create_table() -> Result<(), Fail> {
    if env::local_endpoint().is_none() {
        return Err(Fail::usage(
            "create-table is for the local emulator only: set AWS_ENDPOINT_URL (the real table comes from the SAM template)",
        ));
    }
    let store = env::store().await?;
    store.create_table().await?;
    println!("table {} ready", store.table());
    Ok(())
}

/// Examples printed per kind of problem in the human summary (`--json` lists them all).
const EXAMPLES: usize = 20;

async fn doctor(args: &Args) -> Result<(), Fail> {
    let page_size = match args.value("page-size") {
        Some(raw) => match raw.trim().parse::<i32>() {
            Ok(n) if n >= 1 => Some(n),
            _ => return Err(Fail::usage("--page-size: must be a whole number of at least 1")),
        },
        None => None,
    };
    let repair = args.switch("repair");
    let store = env::store().await?;
    let options = doctor::DoctorOptions { repair, page_size };
    let report = doctor::run(&store, &gatehouse_core::ports::SystemClock, options).await?;
    if args.switch("json") {
        let mut value = serde_json::to_value(&report).map_err(|e| Fail::runtime(e.to_string()))?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("consistent".into(), report.consistent().into());
            obj.insert("unresolved".into(), report.unresolved().into());
        }
        println!("{value}");
    } else {
        print!("{}", doctor_summary(&report));
    }
    if report.consistent() {
        Ok(())
    } else {
        let n = report.unresolved();
        let hint = if repair { "" } else { "; authctl doctor --repair fixes what it safely can" };
        Err(Fail::refused(format!("{n} inconsistenc{} left{hint}", if n == 1 { "y" } else { "ies" })))
    }
}

fn doctor_summary(r: &doctor::Report) -> String {
    let c = &r.scanned;
    let mut out = format!(
        "table {}: {} items in {} scan page{} ({} users, {} email claims, {} username claims, {} codes, {} sessions, \
         {} rate counters, {} groups, {} permissions, {} audit entries, {} second factors, {} challenges, {} identity link items, {} other)\n",
        env::table_name(),
        c.items,
        r.pages,
        if r.pages == 1 { "" } else { "s" },
        c.users,
        c.email_claims,
        c.username_claims,
        c.codes,
        c.sessions,
        c.rate_counters,
        c.groups,
        c.permissions,
        c.audit_entries,
        c.second_factors,
        c.challenges,
        c.identity_items,
        c.other,
    );
    let by_kind: Vec<String> = r.expired.iter().map(|(k, v)| format!("{k} {v}")).collect();
    out.push_str(&format!("expired items still present: {}", r.expired_total));
    if !by_kind.is_empty() {
        out.push_str(&format!(" ({})", by_kind.join(", ")));
    }
    if r.repair {
        out.push_str(&format!("; deleted {}", r.expired_deleted));
    }
    out.push('\n');
    let mut shown: std::collections::HashMap<doctor::ProblemKind, usize> = std::collections::HashMap::new();
    for p in &r.problems {
        let seen = shown.entry(p.kind).or_default();
        *seen += 1;
        if *seen > EXAMPLES {
            continue;
        }
        let outcome = match p.outcome {
            doctor::Outcome::Found => "",
            doctor::Outcome::Repaired => " -> repaired",
            doctor::Outcome::ChangedMeanwhile => " -> not repaired: changed meanwhile, run again",
            doctor::Outcome::HeldByAnother => " -> not repaired: held by another user, needs a human",
            doctor::Outcome::NotRepairable => " -> not repaired automatically",
        };
        out.push_str(&format!("  {}: {} / {}: {}{outcome}\n", p.kind.label(), p.pk, p.sk, p.detail));
    }
    for (kind, n) in &shown {
        if *n > EXAMPLES {
            out.push_str(&format!("  ... and {} more {} (see --json)\n", n - EXAMPLES, kind.label()));
        }
    }
    let found = r.problems.len();
    let left = r.unresolved();
    out.push_str(&match (found, left) {
        (0, _) => "consistent: no problems found\n".to_owned(),
        (f, 0) => format!("consistent now: {f} problem{} found, all repaired\n", if f == 1 { "" } else { "s" }),
        (f, l) if r.repair => format!("INCONSISTENT: {f} problems found, {l} not repaired\n"),
        (f, _) => format!(
            "INCONSISTENT: {f} problem{} found (nothing repaired without --repair)\n",
            if f == 1 { "" } else { "s" }
        ),
    });
    out
}
