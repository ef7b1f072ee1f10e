//! In-process test harness: the real handlers over the memory store (or DynamoDB at the
//! emulator), the capture mailer and a fixed clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod idp;
pub mod passkey;

use std::collections::HashMap;
use std::sync::Arc;

use gatehouse_core::iam;
use gatehouse_core::mail::CaptureMailer;
use gatehouse_core::ports::{Clock, FixedClock, Mailer, SecretKeys, Store};
use gatehouse_core::store::{DynamoStore, FaultyStore, MemoryStore};
use gatehouse_core::{App, Settings};
use gatehouse_functions::routes;
use lambda_http::http::{HeaderMap, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::Value;

pub const T0: i64 = 1_800_000_000;
pub const PASSWORD: &str = "correct horse battery";

pub struct TestApp {
    pub app: Arc<App>,
    pub mail: Arc<CaptureMailer>,
    pub clock: Arc<FixedClock>,
    pub memory: Option<Arc<MemoryStore>>,
    pub dynamo: Option<DynamoStore>,
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: HeaderMap,
}

/// The settings every test app starts from, with `overrides` applied.
/// The body of a 403 `permission_denied`.
pub fn denied() -> Value {
    serde_json::json!({"detail": "You do not have permission to perform this action.", "code": "permission_denied"})
}

pub fn settings(overrides: &[(&str, &str)]) -> Settings {
    let mut vars: HashMap<String, String> = [
        ("EMAIL_FROM", "no-reply@gatehouse.test"),
        ("JWT_ALGORITHM", "HS256"),
        ("JWT_SIGNING_KEY", "test-secret-test-secret-test-secret!"),
        ("FRONTEND_DOMAIN", "app.example.com"),
        ("ARGON2_MEMORY_KIB", "64"),
        ("ARGON2_ITERATIONS", "1"),
        ("TIMING_FLOOR", "0"),
        ("RATE_LOGIN_FAILURES_IP", "off"),
        ("RATE_REGISTER_IP", "off"),
        ("RATE_RESEND_IP", "off"),
        ("RATE_RESET_IP", "off"),
        ("EMAIL_COOLDOWN", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in overrides {
        vars.insert((*k).to_owned(), (*v).to_owned());
    }
    Settings::from_map(&vars).unwrap()
}

/// The app over these ports, each wrapped to record what the functions ask of it (IAM evidence,
/// see `gatehouse_core::iam`; recorded only when `GATEHOUSE_IAM_EVIDENCE` is set). Every test
/// app is built here. `keys`: the settings' inline key when `None`.
pub fn instrumented_app(
    settings: Settings,
    store: Arc<dyn Store>,
    mailer: Arc<dyn Mailer>,
    clock: Arc<dyn Clock>,
    keys: Option<Arc<dyn SecretKeys>>,
) -> App {
    let keys = keys.or_else(|| settings.inline_key()).expect("a signing key");
    let (store, _) = FaultyStore::new(store);
    let mailer = iam::RecordingMailer(mailer);
    App::with_keys(settings, Arc::new(store), Arc::new(mailer), clock, Arc::new(iam::RecordingKeys(keys))).unwrap()
}

/// An SDK configuration's DynamoDB client, recording the IAM actions of what it sends.
pub fn dynamodb_client(sdk: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(sdk).interceptor(iam::Interceptor).build(),
    )
}

fn assemble(store: Arc<dyn Store>, overrides: &[(&str, &str)]) -> (Arc<App>, Arc<CaptureMailer>, Arc<FixedClock>) {
    let mail = Arc::new(CaptureMailer::new());
    let clock = Arc::new(FixedClock::new(T0));
    let app = instrumented_app(settings(overrides), store, mail.clone(), clock.clone(), None);
    (Arc::new(app), mail, clock)
}

/// The app over the memory store.
pub fn spawn_app(overrides: &[(&str, &str)]) -> TestApp {
    let memory = Arc::new(MemoryStore::new());
    let (app, mail, clock) = assemble(memory.clone(), overrides);
    TestApp { app, mail, clock, memory: Some(memory), dynamo: None }
}

/// The emulator's endpoint; `make test` sets it. Tests that need it fail without it.
pub fn emulator_endpoint() -> String {
    std::env::var("GATEHOUSE_TEST_DYNAMODB_ENDPOINT").expect(
        "GATEHOUSE_TEST_DYNAMODB_ENDPOINT is not set: run these tests through `make test`, which starts the emulator",
    )
}

/// The app over DynamoDB at the emulator, in a fresh table of its own.
pub async fn spawn_app_dynamo(overrides: &[(&str, &str)]) -> TestApp {
    let sdk = gatehouse_core::aws::local_aws_config(&emulator_endpoint()).await;
    let table = format!("t-{}", gatehouse_core::secrets::random_id().unwrap().to_lowercase().replace(['-', '_'], "x"));
    let store = DynamoStore::new(dynamodb_client(&sdk), table);
    store.create_table().await.unwrap();
    let (app, mail, clock) = assemble(Arc::new(store.clone()), overrides);
    TestApp { app, mail, clock, memory: None, dynamo: Some(store) }
}

/// Routes a request as API Gateway (or the dev server) would, as the function the route names.
pub async fn dispatch(app: &Arc<App>, req: Request) -> Response<Body> {
    let function = match routes::find(req.method().as_str(), req.uri().path()) {
        routes::Match::Found(route, _) => route.function,
        _ => "fallback",
    };
    iam::as_function(function, routes::dispatch(app.clone(), req)).await
}

pub fn reply(resp: Response<Body>) -> Reply {
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes: &[u8] = resp.body().as_ref();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(bytes).expect("responses are JSON") };
    assert_messages_are_catalogued(status, &headers, &body);
    Reply { status, body, headers }
}

/// Every message of every error response any test sees is one the catalogs know: a message
/// added to the code but not to shared/locale/gatehouse.pot (and so never translated) fails the
/// test that produced it.
fn assert_messages_are_catalogued(status: StatusCode, headers: &HeaderMap, body: &Value) {
    let english = headers.get("content-language").is_none_or(|l| l == "en");
    if status.as_u16() < 400 || !english {
        return;
    }
    let catalogs = gatehouse_core::i18n::Catalogs::get();
    let mut unknown = Vec::new();
    gatehouse_core::i18n::messages_mut(&mut body.clone(), &mut |m| {
        if !catalogs.knows(m) {
            unknown.push(m.clone());
        }
    });
    assert!(unknown.is_empty(), "messages missing from shared/locale/gatehouse.pot: {unknown:?} (in {body})");
}

/// The source IP of test requests unless a test names another.
pub const IP: &str = "203.0.113.7";

pub fn request(method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> Request {
    request_from(IP, method, path, headers, body)
}

/// A request from the source IP `ip`, as API Gateway reports it.
pub fn request_from(ip: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> Request {
    let mut b = lambda_http::http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let mut ctx = lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext::default();
    ctx.http.source_ip = Some(ip.to_owned());
    b.body(body).unwrap().with_request_context(RequestContext::ApiGatewayV2(ctx))
}

impl TestApp {
    pub async fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Body) -> Reply {
        reply(dispatch(&self.app, request(method, path, headers, body)).await)
    }

    /// A JSON request, optionally with a bearer token.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>, bearer: Option<&str>) -> Reply {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a.as_str()));
        }
        let body = body.map(|b| Body::Text(b.to_string())).unwrap_or(Body::Empty);
        self.raw(method, path, &headers, body).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call("POST", path, Some(body), None).await
    }

    /// A JSON POST from the source IP `ip`.
    pub async fn post_from(&self, ip: &str, path: &str, body: Value) -> Reply {
        let req = request_from(ip, "POST", path, &[("content-type", "application/json")], Body::Text(body.to_string()));
        reply(dispatch(&self.app, req).await)
    }

    /// Registers `email` and returns the (uid, token) of its activation link.
    pub async fn register(&self, email: &str) -> (String, String) {
        let r = self.post("/auth/users/", serde_json::json!({"email": email, "password": PASSWORD})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        self.link_parts(email)
    }

    /// (uid, token) of the newest link emailed to `email`.
    pub fn link_parts(&self, email: &str) -> (String, String) {
        let link = self.mail.last_to(email).and_then(|m| m.link).expect("an email with a link");
        let mut parts = link.rsplit('/');
        let token = parts.next().unwrap().to_owned();
        let uid = parts.next().unwrap().to_owned();
        (uid, token)
    }

    /// Registers and activates `email`, then logs in: (access, refresh).
    pub async fn active_user(&self, email: &str) -> (String, String) {
        let (uid, token) = self.register(email).await;
        let r = self.post("/auth/users/activation/", serde_json::json!({"uid": uid, "token": token})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
        self.login(email).await
    }

    pub async fn login(&self, email: &str) -> (String, String) {
        let r = self.post("/auth/jwt/create/", serde_json::json!({"email": email, "password": PASSWORD})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        (r.body["access"].as_str().unwrap().to_owned(), r.body["refresh"].as_str().unwrap().to_owned())
    }
}

impl TestApp {
    /// The stored user with this address.
    pub async fn user(&self, email: &str) -> gatehouse_core::domain::User {
        let e = gatehouse_core::domain::Email::parse(email).unwrap();
        self.app.store.find_user_by_email(&e, self.clock_now()).await.unwrap().expect("user exists")
    }

    pub fn clock_now(&self) -> i64 {
        self.clock.now()
    }

    /// Makes the user staff, directly in the store.
    pub async fn make_staff(&self, email: &str) {
        let u = self.user(email).await;
        let mut staff = u.clone();
        staff.is_staff = true;
        self.app.store.update_user(&u, &staff, self.clock_now()).await.unwrap();
    }

    /// Makes the user a superuser (and staff, as `authctl createsuperuser` does), directly in the
    /// store.
    pub async fn make_superuser(&self, email: &str) {
        let u = self.user(email).await;
        let mut su = u.clone();
        su.is_staff = true;
        su.is_superuser = true;
        self.app.store.update_user(&u, &su, self.clock_now()).await.unwrap();
    }

    /// Makes the user staff holding `perms` (built-in or registered) through a group of its own
    /// (`holds-<email>`), directly in the store.
    pub async fn make_staff_with(&self, email: &str, perms: &[&str]) {
        let group = gatehouse_core::domain::Group {
            name: format!("holds-{email}"),
            description: String::new(),
            permissions: perms.iter().map(|p| (*p).to_owned()).collect(),
            id: format!("g-holds-{email}"),
        };
        assert!(self.app.store.put_group(&group, true).await.unwrap());
        let u = self.user(email).await;
        let mut staff = u.clone();
        staff.is_staff = true;
        staff.groups.push(group.name.clone());
        staff.group_ids.insert(group.name.clone(), group.id.clone());
        self.app.store.update_user(&u, &staff, self.clock_now()).await.unwrap();
    }

    /// Registers permissions (named after their codenames) directly in the store.
    pub async fn register_permissions(&self, codenames: &[&str]) {
        for c in codenames {
            let p = gatehouse_core::domain::Permission {
                codename: (*c).to_owned(),
                name: (*c).to_owned(),
                description: String::new(),
                id: format!("p-{c}"),
            };
            assert!(self.app.store.put_permission(&p, true).await.unwrap(), "{c} registered twice");
        }
    }

    /// The newest email to `to`.
    pub fn last_mail(&self, to: &str) -> gatehouse_core::ports::OutgoingEmail {
        self.mail.last_to(to).unwrap_or_else(|| panic!("no email to {to}"))
    }
}

/// An event from `events/`, as API Gateway would deliver it.
pub fn event(name: &str) -> Request {
    let path = format!("{}/../events/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    lambda_http::request::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}
