//! A local identity provider for the social sign-in tests, served over HTTP on 127.0.0.1: an
//! OpenID Connect issuer (`/oidc`: discovery, keys, token endpoint; ID tokens signed ES256 by a
//! key made per run) and GitHub's OAuth endpoints and API (`/gh`). The authorization step (the
//! user at the provider's login page) is `authorize`: it reads the authorization URL Gatehouse
//! made, as the provider would, and hands out a code for the identity a test chooses. The token
//! endpoint checks what a provider checks: the code (once), the redirect URI, the client, its
//! secret and the PKCE verifier.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub const CLIENT_ID: &str = "gatehouse-test";
pub const CLIENT_SECRET: &str = "corp-secret";
pub const GITHUB_CLIENT: &str = "gh-client";
pub const GITHUB_SECRET: &str = "gh-secret";
pub const REDIRECT: &str = "https://app.example.com/social/callback";
/// Sign in with Apple's client (a Services ID); its secret is a JWT made with the team's key.
pub const APPLE_CLIENT: &str = "com.example.web";
/// Microsoft's personal-accounts tenant.
pub const CONSUMERS: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// What the provider says about the account that signs in.
#[derive(Clone, Debug)]
pub struct Person {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: Value,
    pub given_name: String,
    pub family_name: String,
}

impl Person {
    pub fn verified(sub: &str, email: &str) -> Self {
        Self {
            sub: sub.into(),
            email: Some(email.into()),
            email_verified: json!(true),
            given_name: "Grace".into(),
            family_name: "Hopper".into(),
        }
    }
}

/// How the next ID token is spoiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    None,
    Nonce,
    Audience,
    Issuer,
    Expired,
    FutureIat,
    Signature,
    /// Signed by a key the provider does not publish, under a key id it does not know.
    UnknownKid,
    Azp,
    AlgNone,
}

/// GitHub's view of an account.
#[derive(Clone, Debug)]
pub struct GithubPerson {
    pub id: u64,
    pub name: String,
    /// (address, primary, verified)
    pub emails: Vec<(String, bool, bool)>,
}

#[derive(Clone)]
struct Grant {
    /// `/oidc` or `/ms` (Microsoft's multi-tenant issuer): where the token endpoint is.
    realm: String,
    /// Claims added to (or replacing) the ID token's.
    extra: Value,
    redirect_uri: String,
    client_id: String,
    challenge: String,
    nonce: Option<String>,
    person: Option<Person>,
    github: Option<GithubPerson>,
    tamper: Tamper,
    now: i64,
}

#[derive(Default)]
struct State {
    codes: HashMap<String, Grant>,
    github_tokens: HashMap<String, GithubPerson>,
    /// Requests served, as "METHOD path".
    seen: Vec<String>,
    next: u64,
    /// Codes stay good after an exchange (a provider that does not enforce single use, so that
    /// only Gatehouse's own state guard stands between a replay and a second session).
    reusable_codes: bool,
    /// How each client authenticated at the token endpoint: ("post" | "basic", client secret).
    client_auth: Vec<(String, String)>,
}

pub struct Idp {
    pub base: String,
    state: Arc<Mutex<State>>,
    /// Apple's team key (PKCS#8 PEM) and its public point (x, y).
    apple_pem: String,
    pub apple_public: (Vec<u8>, Vec<u8>),
}

struct Keys {
    signing: EncodingKey,
    other: EncodingKey,
    jwk: Value,
}

fn key_pair() -> (EncodingKey, Value) {
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    let (x, y) = (&point[1..33], &point[33..65]);
    let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
    (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
}

impl Idp {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let (signing, jwk) = key_pair();
        let (other, _) = key_pair();
        let keys = Arc::new(Keys { signing, other, jwk });
        let apple = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).unwrap();
        let point = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, apple.as_ref())
            .unwrap()
            .public_key()
            .as_ref()
            .to_vec();
        let b64 = base64::engine::general_purpose::STANDARD.encode(apple.as_ref());
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        let apple_pem = format!("-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n", lines.join("\n"));
        let apple_public = (point[1..33].to_vec(), point[33..65].to_vec());
        let (s, b) = (state.clone(), base.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (s, b, k) = (s.clone(), b.clone(), keys.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let (s, b, k) = (s.clone(), b.clone(), k.clone());
                        async move { Ok::<_, std::convert::Infallible>(serve(&s, &b, &k, req).await) }
                    });
                    let _ =
                        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        });
        Self { base, state, apple_pem, apple_public }
    }

    pub fn issuer(&self) -> String {
        format!("{}/oidc", self.base)
    }

    /// `SOCIAL_PROVIDERS` for this provider: `corp` (OpenID Connect), `untrusted` (the same,
    /// with `trust_email` off), `github`, and `google` pointed here (a preset's issuer overridden).
    pub fn providers(&self) -> String {
        json!({
            "corp": {"type": "oidc", "issuer": self.issuer(), "client_id": CLIENT_ID, "label": "Corp SSO"},
            "untrusted": {"type": "oidc", "issuer": self.issuer(), "client_id": CLIENT_ID, "trust_email": false},
            "github": {"client_id": GITHUB_CLIENT, "authorize_url": format!("{}/gh/authorize", self.base),
                "token_url": format!("{}/gh/token", self.base), "api_url": format!("{}/gh/api", self.base)},
            "apple": {"client_id": APPLE_CLIENT, "team_id": "TEAM123456", "key_id": "KEY1234567", "issuer": self.issuer()},
            "microsoft": {"client_id": CLIENT_ID, "issuer": format!("{}/ms", self.base)},
            "msorg": {"type": "microsoft", "tenant": "organizations", "client_id": CLIENT_ID, "issuer": format!("{}/ms", self.base)},
        })
        .to_string()
    }

    /// `SOCIAL_CLIENT_SECRETS` for [`Idp::providers`].
    pub fn secrets(&self) -> String {
        json!({"corp": CLIENT_SECRET, "untrusted": CLIENT_SECRET, "github": GITHUB_SECRET, "apple": self.apple_pem,
            "microsoft": CLIENT_SECRET, "msorg": CLIENT_SECRET})
        .to_string()
    }

    /// How clients authenticated at the token endpoint so far: ("post" | "basic", secret).
    pub fn client_auth(&self) -> Vec<(String, String)> {
        self.state.lock().unwrap().client_auth.clone()
    }

    /// What the provider's login page does for `authorization_url`: a code for `person`,
    /// whose ID token is spoiled as `tamper` says, issued at `now`. Returns (code, state).
    pub fn authorize(&self, authorization_url: &str, person: Person, tamper: Tamper, now: i64) -> (String, String) {
        self.grant(authorization_url, Some(person), None, tamper, now, json!({}))
    }

    /// [`Idp::authorize`] with more claims in the ID token (Microsoft's `tid`, `xms_edov` ...).
    pub fn authorize_with(&self, authorization_url: &str, person: Person, extra: Value, now: i64) -> (String, String) {
        self.grant(authorization_url, Some(person), None, Tamper::None, now, extra)
    }

    /// GitHub's login page: a code for `person`. Returns (code, state).
    pub fn authorize_github(&self, authorization_url: &str, person: GithubPerson) -> (String, String) {
        self.grant(authorization_url, None, Some(person), Tamper::None, 0, json!({}))
    }

    fn grant(
        &self,
        url: &str,
        person: Option<Person>,
        github: Option<GithubPerson>,
        tamper: Tamper,
        now: i64,
        extra: Value,
    ) -> (String, String) {
        let url = url::Url::parse(url).unwrap();
        let realm = if url.path().starts_with("/ms") { "/ms" } else { "/oidc" }.to_owned();
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["code_challenge_method"], "S256");
        let mut s = self.state.lock().unwrap();
        s.next += 1;
        let code = format!("code-{}", s.next);
        s.codes.insert(
            code.clone(),
            Grant {
                realm,
                extra,
                redirect_uri: q["redirect_uri"].clone(),
                client_id: q["client_id"].clone(),
                challenge: q["code_challenge"].clone(),
                nonce: q.get("nonce").cloned(),
                person,
                github,
                tamper,
                now,
            },
        );
        (code, q["state"].clone())
    }

    /// Lets every code be exchanged any number of times (see `State::reusable_codes`).
    pub fn reuse_codes(&self) {
        self.state.lock().unwrap().reusable_codes = true;
    }

    /// Requests the provider served ("GET /oidc/jwks" ...).
    pub fn seen(&self) -> Vec<String> {
        self.state.lock().unwrap().seen.clone()
    }
}

fn reply(status: u16, body: Value) -> hyper::Response<Full<Bytes>> {
    hyper::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn pkce(verifier: &str) -> String {
    use sha2::Digest;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

async fn serve(
    state: &Mutex<State>,
    base: &str,
    keys: &Keys,
    req: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Full<Bytes>> {
    let (method, path) = (req.method().to_string(), req.uri().path().to_owned());
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let agent = req.headers().contains_key("user-agent");
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    state.lock().unwrap().seen.push(format!("{method} {path}"));
    let issuer = format!("{base}/oidc");
    match (method.as_str(), path.as_str()) {
        ("GET", "/oidc/.well-known/openid-configuration") => reply(
            200,
            json!({"issuer": issuer, "authorization_endpoint": format!("{issuer}/authorize"),
                "token_endpoint": format!("{issuer}/token"), "jwks_uri": format!("{issuer}/jwks"),
                "id_token_signing_alg_values_supported": ["ES256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"]}),
        ),
        // Microsoft's multi-tenant document: the tenant as `{tenantid}`, and no client
        // authentication method named (so HTTP Basic, OpenID Connect's default).
        ("GET", "/ms/.well-known/openid-configuration") => reply(
            200,
            json!({"issuer": format!("{base}/ms/{{tenantid}}/v2.0"), "authorization_endpoint": format!("{base}/ms/authorize"),
                "token_endpoint": format!("{base}/ms/token"), "jwks_uri": format!("{issuer}/jwks")}),
        ),
        ("GET", "/oidc/jwks") => reply(200, json!({"keys": [keys.jwk]})),
        ("POST", "/oidc/token") | ("POST", "/ms/token") | ("POST", "/gh/token") => {
            let github = path.starts_with("/gh");
            let grant = {
                let mut s = state.lock().unwrap();
                let code = form.get("code").map(String::as_str).unwrap_or("");
                if s.reusable_codes {
                    s.codes.get(code).cloned()
                } else {
                    s.codes.remove(code)
                }
            };
            let Some(g) = grant else { return reply(400, json!({"error": "invalid_grant"})) };
            // The client's secret, in the form or as HTTP Basic.
            let basic =
                auth.strip_prefix("Basic ").and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok());
            let basic = basic.and_then(|b| String::from_utf8(b).ok()).and_then(|s| {
                let (id, secret) = s.split_once(':')?;
                let dec = |v: &str| {
                    url::form_urlencoded::parse(format!("x={v}").as_bytes()).next().map(|(_, v)| v.into_owned())
                };
                Some((dec(id)?, dec(secret)?))
            });
            let (how, given) = match (form.get("client_secret"), &basic) {
                (Some(s), None) => ("post", s.clone()),
                (None, Some((_, s))) => ("basic", s.clone()),
                _ => ("none", String::new()),
            };
            state.lock().unwrap().client_auth.push((how.to_owned(), given.clone()));
            let client = form.get("client_id").cloned().or_else(|| basic.as_ref().map(|(id, _)| id.clone()));
            let secret_ok = match client.as_deref() {
                Some(GITHUB_CLIENT) => given == GITHUB_SECRET,
                Some(CLIENT_ID) => given == CLIENT_SECRET,
                // Apple's secret is a JWT the test checks itself.
                Some(APPLE_CLIENT) => given.split('.').count() == 3,
                _ => false,
            };
            let ok = form.get("grant_type").is_some_and(|v| v == "authorization_code") || github;
            let ok = ok
                && form.get("redirect_uri") == Some(&g.redirect_uri)
                && client.as_deref() == Some(g.client_id.as_str())
                && secret_ok
                && form.get("code_verifier").is_some_and(|v| pkce(v) == g.challenge);
            if !ok {
                // GitHub answers a bad exchange with 200 and an error field.
                return reply(if github { 200 } else { 400 }, json!({"error": "invalid_grant"}));
            }
            if let Some(person) = g.github {
                let token = format!("gho_{}", form["code"]);
                state.lock().unwrap().github_tokens.insert(token.clone(), person);
                return reply(
                    200,
                    json!({"access_token": token, "token_type": "bearer", "scope": "read:user,user:email"}),
                );
            }
            let p = g.person.unwrap();
            let t = g.tamper;
            let own_issuer = match (g.realm.as_str(), g.extra.get("tid").and_then(Value::as_str)) {
                ("/ms", Some(tid)) => format!("{base}/ms/{tid}/v2.0"),
                _ => issuer.clone(),
            };
            let mut claims = json!({
                "iss": if t == Tamper::Issuer { format!("{base}/elsewhere") } else { own_issuer },
                "sub": p.sub, "aud": if t == Tamper::Audience { "someone-else" } else { g.client_id.as_str() },
                "iat": if t == Tamper::FutureIat { g.now + 3600 } else { g.now },
                "exp": if t == Tamper::Expired { g.now - 120 } else { g.now + 300 },
                "nonce": if t == Tamper::Nonce { Some("another-nonce".to_owned()) } else { g.nonce },
                "email_verified": p.email_verified, "given_name": p.given_name, "family_name": p.family_name,
            });
            if let Some(email) = p.email {
                claims["email"] = json!(email);
            }
            if t == Tamper::Azp {
                claims["azp"] = json!("someone-else");
            }
            for (k, v) in g.extra.as_object().into_iter().flatten() {
                claims[k.as_str()] = v.clone();
            }
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some(if t == Tamper::UnknownKid { "k2" } else { "k1" }.into());
            let key = if matches!(t, Tamper::Signature | Tamper::UnknownKid) { &keys.other } else { &keys.signing };
            let mut id_token = jsonwebtoken::encode(&header, &claims, key).unwrap();
            if t == Tamper::AlgNone {
                let payload = id_token.split('.').nth(1).unwrap().to_owned();
                id_token = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#));
            }
            reply(200, json!({"access_token": "at", "token_type": "Bearer", "id_token": id_token, "expires_in": 300}))
        }
        ("GET", "/gh/api/user") | ("GET", "/gh/api/user/emails") => {
            if !agent {
                return reply(403, json!({"message": "Request forbidden by administrative rules."}));
            }
            let token = auth.strip_prefix("Bearer ").unwrap_or("");
            let Some(p) = state.lock().unwrap().github_tokens.get(token).cloned() else {
                return reply(401, json!({"message": "Bad credentials"}));
            };
            if path.ends_with("/emails") {
                let list: Vec<Value> = p
                    .emails
                    .iter()
                    .map(|(e, primary, verified)| json!({"email": e, "primary": primary, "verified": verified, "visibility": null}))
                    .collect();
                return reply(200, json!(list));
            }
            reply(200, json!({"id": p.id, "login": "grace", "name": p.name}))
        }
        _ => reply(404, json!({"error": "not_found"})),
    }
}
