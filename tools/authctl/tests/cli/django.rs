//! `authctl import-django`: hand-written dumpdata files (natural keys and primary keys, a custom
//! user model and auth.user) imported into a fresh table, checked through the core crate's store.

use std::io::Write;
use std::process::{Output, Stdio};

use gatehouse_core::domain::{AuditStream, Email, Group, Permission, User, UserId};
use gatehouse_core::password::{stored_hash_format, HashFormat};
use gatehouse_core::ports::{AuditStore, GroupStore, PermissionStore, UserStore};
use serde_json::{json, Value};

use crate::common::{code, now, stderr, stdout, Table};

/// Hashes as Django writes them (whether they verify is tested in the core crate).
const PBKDF2: &str = "pbkdf2_sha256$1000000$hQ4mZt8WvR2pLx6YcN0aKe$BwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSY=";
const PBKDF2_SHA1: &str = "pbkdf2_sha1$720000$Vb3LwqC7sYDyTjonyWVEYG$MjM0NTY3ODk6Ozw9Pj9AQUJDREU=";
const ARGON2: &str =
    "argon2$argon2id$v=19$m=102400,t=2,p=8$QVlrMTNzSk85WmVaUnFLUVh1ZjlJQg$yDeprgQAI7tJq7xVGSpmbSIexIcvk22gHuu2rXGQ26A";
const BCRYPT_SHA256: &str = "bcrypt_sha256$$2b$12$Ab3./Zx9QwAb3./Zx9QwAb3./Zx9QwAb3./Zx9QwAb3./Zx9QwAb3";
const UNUSABLE: &str = "!kR2vX9pLq4WmZs7TbN1cYhGdJfE8uA3oKiVwPxQe";
const MD5: &str = "md5$Gq7kPz$0f3a9d5c1e7b2a4f6c8d0e1a3b5c7d9e";

/// A dumpdata file in a temporary directory, removed when dropped.
struct Dump(std::path::PathBuf);

impl Dump {
    fn new(records: &Value) -> Self {
        let path = std::env::temp_dir().join(format!("authctl-django-{}.json", UserId::generate()));
        std::fs::write(&path, serde_json::to_string_pretty(records).unwrap()).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for Dump {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn import(t: &Table, dump: &Dump, extra: &[&str]) -> Output {
    let mut args = vec!["import-django", dump.path()];
    args.extend_from_slice(extra);
    t.run(&args, &[])
}

fn report(o: &Output) -> Value {
    serde_json::from_str(&stdout(o)).unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(o), stderr(o)))
}

async fn user(t: &Table, email: &str) -> Option<User> {
    t.store.find_user_by_email(&Email::parse(email).unwrap(), now()).await.unwrap()
}

async fn all_users(t: &Table) -> Vec<User> {
    let (mut users, next) = t.store.list_users(None, 100, now()).await.unwrap();
    assert!(next.is_none());
    users.sort_by(|a, b| a.email.as_str().cmp(b.email.as_str()));
    users
}

async fn group(t: &Table, name: &str) -> Group {
    t.store.get_groups(&[name.to_owned()]).await.unwrap().pop().unwrap_or_else(|| panic!("no group {name}"))
}

async fn registered(t: &Table, codename: &str) -> Permission {
    t.store.get_permissions(&[codename.to_owned()]).await.unwrap().pop().unwrap_or_else(|| panic!("{codename}"))
}

/// Everything the table holds that an import writes.
async fn snapshot(t: &Table) -> (Vec<User>, Vec<Group>, Vec<Permission>) {
    let mut groups = t.store.list_groups().await.unwrap();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let mut perms = t.store.list_permissions().await.unwrap();
    perms.sort_by(|a, b| a.codename.cmp(&b.codename));
    (all_users(t).await, groups, perms)
}

fn user_record(model: &str, pk: Value, fields: Value) -> Value {
    let mut base = json!({
        "password": PBKDF2,
        "last_login": null,
        "is_superuser": false,
        "username": "",
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_staff": false,
        "is_active": true,
        "date_joined": "2020-01-01T00:00:00Z",
        "groups": [],
        "user_permissions": [],
    });
    for (k, v) in fields.as_object().unwrap() {
        base[k] = v.clone();
    }
    let mut record = json!({"model": model, "fields": base});
    if !pk.is_null() {
        record["pk"] = pk;
    }
    record
}

/// What `dumpdata accounts.user auth.group --natural-foreign --natural-primary` writes for a
/// project with a custom user model: groups first (no pk), users naming them by natural key.
fn natural_dump() -> Value {
    json!([
        {"model": "contenttypes.contenttype", "pk": 4, "fields": {"app_label": "shop", "model": "order"}},
        {"model": "auth.group", "fields": {"name": "support", "permissions": [
            ["view_user", "auth", "user"], ["refund_order", "shop", "order"]]}},
        {"model": "auth.group", "fields": {"name": "editors", "permissions": [["change_group", "auth", "group"]]}},
        user_record("accounts.user", json!(1), json!({
            "email": "Ada@Example.com", "username": "ada", "first_name": "Ada", "last_name": "Lovelace",
            "is_staff": true, "date_joined": "2021-03-04T05:06:07.123Z", "last_login": "2024-05-01T12:20:30.5+02:00",
            "groups": [["support"]], "user_permissions": [["export_report", "shop", "report"]],
        })),
        user_record("accounts.user", json!(2), json!({
            "email": "bob@example.com", "username": "bob", "password": ARGON2, "is_active": false,
            "date_joined": "2019-12-31T23:00:00", "groups": [["support"], ["editors"]],
        })),
        user_record("accounts.user", json!(3), json!({
            "email": "cy@example.com", "password": UNUSABLE, "is_staff": true, "is_superuser": true,
        })),
        user_record("accounts.user", json!(4), json!({"email": "dee@example.com", "password": BCRYPT_SHA256})),
        user_record("accounts.user", json!(5), json!({"email": "eve@example.com", "password": PBKDF2_SHA1})),
        {"model": "sessions.session", "pk": "abc", "fields": {"session_data": "x", "expire_date": "2030-01-01T00:00:00Z"}},
    ])
}

#[tokio::test]
async fn a_custom_user_model_with_natural_keys_comes_in_with_hashes_flags_dates_groups_and_permissions() {
    let t = Table::new("django-natural").await;
    let dump = Dump::new(&natural_dump());
    let o = import(&t, &dump, &[]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("users:       5 imported, 0 skipped, 0 refused"), "{out}");
    assert!(out.contains("groups:      2 imported, 0 skipped, 0 refused"), "{out}");
    assert!(out.contains("permissions: 2 registered, 2 present already"), "{out}");
    assert!(out.contains("2 other records not imported (contenttypes.contenttype 1, sessions.session 1)"), "{out}");

    // Permissions: Django's `app_label.codename`, registered unless built in.
    let refund = registered(&t, "shop.refund_order").await;
    let export = registered(&t, "shop.export_report").await;
    assert_eq!(refund.name, "shop.refund_order", "no auth.permission record gives a name");
    assert_eq!(t.store.list_permissions().await.unwrap().len(), 2, "built-in ones are not stored");
    let support = group(&t, "support").await;
    assert_eq!(support.permissions, ["auth.view_user", "shop.refund_order"]);
    assert_eq!(group(&t, "editors").await.permissions, ["auth.change_group"]);

    let ada = user(&t, "ada@example.com").await.unwrap();
    assert_eq!(ada.email.as_str(), "Ada@example.com", "the address as Django had it, domain lower-cased");
    assert_eq!(ada.password_hash, PBKDF2, "byte for byte");
    assert_eq!(ada.username.as_ref().map(|u| u.as_str()), Some("ada"));
    assert_eq!((ada.first_name.as_str(), ada.last_name.as_str()), ("Ada", "Lovelace"));
    assert_eq!((ada.is_active, ada.is_staff, ada.is_superuser), (true, true, false));
    assert_eq!((ada.date_joined, ada.last_login), (1_614_834_367, Some(1_714_558_830)));
    assert_eq!((ada.expires_at, ada.deactivated_at, ada.version), (None, None, 1));
    assert_eq!(ada.groups, ["support"]);
    assert!(ada.member_of(&support));
    assert!(ada.grants(&export), "user_permissions name the registered permission");
    assert_eq!(ada.user_permissions.len(), 1);

    let bob = user(&t, "bob@example.com").await.unwrap();
    assert_eq!(bob.password_hash, ARGON2);
    assert_eq!((bob.is_active, bob.expires_at, bob.last_login), (false, None, None));
    assert_eq!(bob.date_joined, 1_577_833_200, "a date without an offset is UTC");
    let mut groups = bob.groups.clone();
    groups.sort();
    assert_eq!(groups, ["editors", "support"]);
    assert!(bob.member_of(&group(&t, "editors").await) && bob.member_of(&support));

    let cy = user(&t, "cy@example.com").await.unwrap();
    assert_eq!(cy.password_hash, UNUSABLE, "an unusable password stays unusable");
    assert_eq!((cy.is_staff, cy.is_superuser, cy.username), (true, true, None));
    assert_eq!(user(&t, "dee@example.com").await.unwrap().password_hash, BCRYPT_SHA256);
    assert_eq!(user(&t, "eve@example.com").await.unwrap().password_hash, PBKDF2_SHA1);

    // Each account created is in the audit trail, as authctl's.
    let trail = t.store.audit_page(&AuditStream::Account(ada.id.clone()), None, 0, 10, now()).await.unwrap();
    assert_eq!(trail.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(), ["admin.user_created"]);
    assert_eq!(trail[0].via, "authctl");

    // Again: nothing changes, every record is reported as skipped (exit 3).
    let before = snapshot(&t).await;
    let o = import(&t, &dump, &["--json"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(r["users"], json!({"total": 5, "imported": 0, "skipped": 5, "refused": 0}));
    assert_eq!(r["groups"], json!({"total": 2, "imported": 0, "skipped": 2, "refused": 0}));
    assert_eq!(r["permissions"], json!({"total": 4, "imported": 0, "existing": 4, "skipped": 0, "refused": 0}));
    assert_eq!(snapshot(&t).await, before);
    let skipped: Vec<&Value> = r["problems"].as_array().unwrap().iter().filter(|p| p["kind"] == "user").collect();
    assert_eq!(skipped[0]["pk"], 1);
    assert_eq!(skipped[0]["key"], "Ada@example.com");
    assert_eq!(skipped[0]["outcome"], "skipped");
    assert!(skipped[0]["reason"].as_str().unwrap().contains("exists in Gatehouse already"), "{r}");
}

#[tokio::test]
async fn auth_user_by_primary_keys_resolves_through_the_dumps_group_and_permission_records() {
    let t = Table::new("django-pks").await;
    let dump = Dump::new(&json!([
        {"model": "contenttypes.contenttype", "pk": 4, "fields": {"app_label": "auth", "model": "user"}},
        {"model": "auth.permission", "pk": 5, "fields": {"name": "Can refund orders", "content_type": ["shop", "order"], "codename": "refund_order"}},
        {"model": "auth.permission", "pk": 6, "fields": {"name": "Can view user", "content_type": 4, "codename": "view_user"}},
        {"model": "auth.permission", "pk": 7, "fields": {"name": "Can audit", "content_type": 4, "codename": "audit books"}},
        user_record("auth.user", json!(10), json!({"email": "ada@example.com", "groups": [1], "user_permissions": [5, 7]})),
        {"model": "auth.group", "pk": 1, "fields": {"name": "desk", "permissions": [5, 6]}},
    ]));
    let o = import(&t, &dump, &["--json"]);
    // The codename Gatehouse does not take is refused (exit 3); everything else is imported.
    assert_eq!(code(&o), 3, "{}\n{}", stdout(&o), stderr(&o));
    let r = report(&o);
    assert_eq!(r["user_model"], "auth.user");
    assert_eq!(r["users"]["imported"], 1);
    assert_eq!(r["permissions"], json!({"total": 3, "imported": 1, "existing": 1, "skipped": 0, "refused": 1}));
    assert_eq!(r["problems"][0]["pk"], 7);
    assert_eq!(r["problems"][0]["key"], "auth.audit books");
    assert!(r["notes"][0]["note"].as_str().unwrap().contains("not granted auth.audit books"), "{r}");
    assert_eq!(r["ignored"], json!({"records": 4, "models": {"auth.permission": 3, "contenttypes.contenttype": 1}}));

    assert_eq!(registered(&t, "shop.refund_order").await.name, "Can refund orders", "Django's name");
    let desk = group(&t, "desk").await;
    assert_eq!(desk.permissions, ["auth.view_user", "shop.refund_order"]);
    let ada = user(&t, "ada@example.com").await.unwrap();
    assert!(ada.member_of(&desk));
    assert_eq!(ada.user_permissions.keys().collect::<Vec<_>>(), ["shop.refund_order"]);
}

#[tokio::test]
async fn primary_keys_the_dump_cannot_resolve_refuse_the_whole_file_before_anything_is_written() {
    let t = Table::new("django-nokeys").await;
    let perms = Dump::new(&json!([
        {"model": "auth.group", "pk": 1, "fields": {"name": "desk", "permissions": [5]}},
        user_record("auth.user", json!(10), json!({"email": "ada@example.com", "groups": [1]})),
    ]));
    let groups =
        Dump::new(&json!([user_record("auth.user", json!(10), json!({"email": "ada@example.com", "groups": [1]})),]));
    for dump in [&perms, &groups] {
        let o = import(&t, dump, &[]);
        assert_eq!(code(&o), 2, "{}\n{}", stdout(&o), stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("dumpdata auth.user auth.group --natural-foreign --natural-primary"), "{err}");
        assert!(err.contains("nothing was imported"), "{err}");
        assert!(stdout(&o).is_empty());
    }
    assert_eq!(snapshot(&t).await, (vec![], vec![], vec![]));
}

#[tokio::test]
async fn an_existing_address_is_skipped_and_never_overwritten() {
    let t = Table::new("django-existing").await;
    let mine = User {
        username: Some(gatehouse_core::domain::Username::parse("ada").unwrap()),
        ..User::fixture("ada@example.com")
    };
    t.store.create_user(&mine, None, now()).await.unwrap();
    let dump = Dump::new(&json!([
        user_record("auth.user", json!(1), json!({"email": "ADA@example.com", "is_superuser": true})),
        user_record("auth.user", json!(2), json!({"email": "other@example.com", "username": "Ada"})),
        user_record("auth.user", json!(3), json!({"email": "ok@example.com"})),
    ]));
    let o = import(&t, &dump, &[]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("users:       1 imported, 2 skipped, 0 refused"), "{out}");
    assert!(out.contains("auth.user pk 1 (ADA@example.com): skipped: an account with this address exists"), "{out}");
    assert!(out.contains("auth.user pk 2 (other@example.com): skipped: the username \"Ada\" is another"), "{out}");
    assert!(stderr(&o).contains("2 records were skipped or refused"), "{}", stderr(&o));
    assert_eq!(user(&t, "ada@example.com").await.unwrap(), mine, "left exactly as it was");
    assert!(user(&t, "other@example.com").await.is_none());
    assert!(user(&t, "ok@example.com").await.is_some());
}

#[tokio::test]
async fn unsupported_hashes_are_refused_or_with_the_flag_imported_unusable() {
    let t = Table::new("django-md5").await;
    let dump = Dump::new(&json!([
        user_record("auth.user", json!(1), json!({"email": "old@example.com", "password": MD5})),
        user_record(
            "auth.user",
            json!(2),
            json!({"email": "unsalted@example.com", "password": "5f4dcc3b5aa765d61d8327deb882cf99"})
        ),
        user_record("auth.user", json!(3), json!({"email": "new@example.com"})),
    ]));
    let o = import(&t, &dump, &["--json"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(r["users"], json!({"total": 3, "imported": 1, "skipped": 0, "refused": 2}));
    let reasons: Vec<&str> = r["problems"].as_array().unwrap().iter().map(|p| p["reason"].as_str().unwrap()).collect();
    assert!(reasons[0].contains("(md5) is one Gatehouse does not verify"), "{r}");
    assert!(reasons[0].contains("--unusable-unsupported"), "{r}");
    assert!(!stdout(&o).contains("5f4dcc3b") && !stdout(&o).contains("0f3a9d5c"), "never a hash: {r}");
    assert!(user(&t, "old@example.com").await.is_none());
    assert!(user(&t, "new@example.com").await.is_some());

    let o = import(&t, &dump, &["--unusable-unsupported", "--json"]);
    assert_eq!(code(&o), 3, "new@ exists now: {}", stderr(&o));
    let r = report(&o);
    assert_eq!(r["users"], json!({"total": 3, "imported": 2, "skipped": 1, "refused": 0}));
    let notes = r["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 2, "{r}");
    assert_eq!((&notes[0]["pk"], &notes[0]["key"]), (&json!(1), &json!("old@example.com")));
    assert!(notes[0]["note"].as_str().unwrap().contains("unusable password"), "{r}");
    for email in ["old@example.com", "unsalted@example.com"] {
        let u = user(&t, email).await.unwrap();
        assert!(u.password_hash.starts_with('!') && u.password_hash.len() > 20, "{}", u.password_hash);
        assert_eq!(stored_hash_format(&u.password_hash), HashFormat::Unusable);
    }
}

#[tokio::test]
async fn records_without_a_usable_email_are_refused_and_other_flaws_noted() {
    let t = Table::new("django-email").await;
    let dump = Dump::new(&json!([
        {"model": "auth.group", "fields": {"name": "a/b", "permissions": []}},
        user_record("auth.user", json!(1), json!({"email": "", "username": "noemail"})),
        user_record("auth.user", json!(2), json!({"email": "not an address"})),
        user_record("auth.user", json!(3), json!({"email": null})),
        user_record("auth.user", json!(4), json!({"email": "ok@example.com", "username": "has space", "groups": [["a/b"], ["gone"]]})),
        user_record("auth.user", json!(5), json!({"email": "OK@EXAMPLE.COM"})),
        user_record("auth.user", json!(6), json!({"email": "late@example.com", "date_joined": "last tuesday"})),
        user_record("auth.user", json!(7), json!({"email": "flag@example.com", "is_staff": "yes"})),
    ]));
    let o = import(&t, &dump, &["--json"]);
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let r = report(&o);
    assert_eq!(r["users"], json!({"total": 7, "imported": 1, "skipped": 1, "refused": 5}));
    assert_eq!(r["groups"], json!({"total": 2, "imported": 0, "skipped": 0, "refused": 2}));
    let users: Vec<(Value, String, String)> = r["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "user")
        .map(|p| (p["pk"].clone(), p["outcome"].as_str().unwrap().to_owned(), p["reason"].as_str().unwrap().to_owned()))
        .collect();
    let pks: Vec<&Value> = users.iter().map(|(pk, _, _)| pk).collect();
    assert_eq!(pks, [&json!(1), &json!(2), &json!(3), &json!(5), &json!(6), &json!(7)], "in dump order: {r}");
    assert!(users[0].2.starts_with("no email address"), "{r}");
    assert!(users[1].2.contains("Enter a valid email address"), "{r}");
    assert_eq!(users[3].1, "skipped");
    assert!(users[3].2.contains("also that of auth.user pk 4"), "{r}");
    assert!(users[4].2.contains("date_joined \"last tuesday\""), "{r}");
    assert!(users[5].2.contains("is_staff"), "{r}");
    let notes: Vec<&str> = r["notes"].as_array().unwrap().iter().map(|n| n["note"].as_str().unwrap()).collect();
    assert_eq!(notes.len(), 3, "{r}");
    assert!(notes[0].contains("without its username \"has space\""), "{r}");
    assert!(notes[1].contains("not made a member of \"a/b\""), "{r}");
    let ok = user(&t, "ok@example.com").await.unwrap();
    assert_eq!((ok.username, ok.groups.len()), (None, 0));
    assert_eq!(all_users(&t).await.len(), 1);
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_says_what_would_happen() {
    let t = Table::new("django-dry").await;
    t.store.create_user(&User::fixture("eve@example.com"), None, now()).await.unwrap();
    let before = snapshot(&t).await;
    let dump = Dump::new(&natural_dump());
    let o = import(&t, &dump, &["--dry-run", "--json"]);
    assert_eq!(code(&o), 3, "eve@ exists: {}", stderr(&o));
    let r = report(&o);
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["complete"], true);
    assert_eq!(r["source"], dump.path());
    assert_eq!(r["user_model"], "accounts.user");
    assert_eq!(r["users"], json!({"total": 5, "imported": 4, "skipped": 1, "refused": 0}));
    assert_eq!(r["groups"], json!({"total": 2, "imported": 2, "skipped": 0, "refused": 0}));
    assert_eq!(r["permissions"], json!({"total": 4, "imported": 2, "existing": 2, "skipped": 0, "refused": 0}));
    assert_eq!(r["ignored"]["records"], 2);
    assert_eq!(r["problems"][0]["key"], "eve@example.com");
    assert_eq!(snapshot(&t).await, before);
    let today = AuditStream::Day(now().div_euclid(gatehouse_core::domain::DAY));
    assert!(t.store.audit_page(&today, None, 0, 10, now()).await.unwrap().is_empty(), "nothing audited");

    let o = import(&t, &dump, &["--dry-run"]);
    assert!(stdout(&o).contains("dry run: nothing was written"), "{}", stdout(&o));
    assert!(stdout(&o).contains("users:       4 would be imported, 1 skipped"), "{}", stdout(&o));
}

#[tokio::test]
async fn the_dump_comes_from_stdin_with_a_dash() {
    let t = Table::new("django-stdin").await;
    let mut child = t
        .cmd(&["import-django", "-", "--user-model", "accounts.user"], &[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(natural_dump().to_string().as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("stdin: 5 accounts.user records, 2 groups"), "{}", stdout(&o));
    assert_eq!(user(&t, "ada@example.com").await.unwrap().password_hash, PBKDF2);
}

#[tokio::test]
async fn unreadable_input_is_a_usage_error_that_writes_nothing() {
    let t = Table::new("django-bad").await;
    let bad = Dump(std::env::temp_dir().join(format!("authctl-django-{}.json", UserId::generate())));
    std::fs::write(&bad.0, "[\n {\"model\": \"auth.user\", \"fields\": {}},\n {\"model\": \n]").unwrap();
    let o = import(&t, &bad, &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("line 4 column 1"), "{}", stderr(&o));
    let object = Dump::new(&json!({"model": "auth.user"}));
    let o = import(&t, &object, &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("expected a JSON array of dumpdata records"), "{}", stderr(&o));

    let o = t.run(&["import-django", "/no/such/dump.json"], &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("cannot read /no/such/dump.json"), "{}", stderr(&o));
    let o = t.run(&["import-django"], &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("FILE is required"), "{}", stderr(&o));
    assert_eq!(code(&t.run(&["import-django", "a.json", "b.json"], &[])), 2);

    // Two models that look like users: which one is meant is asked for.
    let two = Dump::new(&json!([
        user_record("auth.user", json!(1), json!({"email": "a@example.com"})),
        user_record("accounts.user", json!(1), json!({"email": "b@example.com"})),
    ]));
    let o = import(&t, &two, &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--user-model"), "{}", stderr(&o));
    let o = import(&t, &two, &["--user-model", "shop.customer"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("holds no shop.customer records"), "{}", stderr(&o));
    assert_eq!(snapshot(&t).await, (vec![], vec![], vec![]));

    let o = import(&t, &two, &["--user-model", "accounts.user", "--json"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(report(&o)["ignored"]["models"], json!({"auth.user": 1}));
    assert!(user(&t, "b@example.com").await.is_some() && user(&t, "a@example.com").await.is_none());
}
