"""Two sign-in providers on one local port, for the black-box tests of social sign-in
(test_social.py): an OpenID Connect provider under /oidc and a GitHub-like OAuth 2.0 provider
under /github. Standard library HTTP, `cryptography` for the keys; ID tokens are signed here
(RS256 by default, ES256 on request), nothing is verified by a third-party package.

    python tools/blackbox/fake_providers.py PORT

OpenID Connect (issuer http://127.0.0.1:PORT/oidc):
  GET  /oidc/.well-known/openid-configuration   discovery
  GET  /oidc/jwks                               both public keys, with kid
  GET  /oidc/authorize                          302 to redirect_uri?code=..&state=..
  POST /oidc/token                              code + PKCE (S256) -> access_token, id_token
  GET  /oidc/userinfo                           Bearer -> the identity's claims
GitHub-like (as github.com and api.github.com answer):
  GET  /github/login/oauth/authorize            302 to redirect_uri?code=..&state=..
  POST /github/login/oauth/access_token         JSON with `Accept: application/json`, else a form;
                                                errors as GitHub gives them: 200 {"error": ..}
  GET  /github/api/user, /github/api/user/emails   Bearer (or `token`), User-Agent required
Control (for the tests):
  POST /control/next     {"provider": "oidc"|"github", identity fields..., "tamper": ..,
                          "alg": "RS256"|"ES256", "emails": [...] (github), "token_status": 503,
                          "token_delay": seconds}: what the next authorizations of that provider
                          hand out. Each call replaces the provider's whole setting; tamper,
                          token_status and token_delay apply to the next authorization only
                          (token_status: its token request is answered with that status, the code
                          left unspent; token_delay: answered that many seconds late).
  GET  /control/health   200
  GET  /control/requests the token requests received, newest last (to check PKCE, client auth)
  POST /control/reset    forgets everything set and issued

Tampering switches (the ID token of the next OIDC authorization): nonce (another nonce),
no_nonce (none at all), aud (another audience), azp (two audiences, azp another client), iss
(another issuer), expired, future_iat (issued an hour from now), signature (a byte of the
signature changed), wrong_key (signed by a key not in the JWKS, under the published kid),
alg_none (unsigned, alg "none").

Clients (override with FAKE_CLIENTS='{"oidc": {"id": "secret"}, "github": {"id": "secret"}}'):
oidc `gatehouse-test` / `corp-secret`, github `gh-client` / `gh-secret`. A client may leave the
secret out at the token endpoint (a public client: PKCE only); a wrong one is refused.
"""

import base64
import hashlib
import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

CLIENTS = json.loads(
    os.environ.get("FAKE_CLIENTS") or '{"oidc": {"gatehouse-test": "corp-secret"}, "github": {"gh-client": "gh-secret"}}'
)
ONCE = ("tamper", "token_status", "token_delay")
TAMPERS = {"nonce", "no_nonce", "aud", "azp", "iss", "expired", "future_iat", "signature", "wrong_key", "alg_none"}
CODE_TTL = 600


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64u_json(obj):
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


def s256(verifier):
    return b64u(hashlib.sha256(verifier.encode()).digest())


class Keys:
    """An RSA and a P-256 key (published), and a spare of each (never published)."""

    def __init__(self):
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.spare_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.spare_ec = ec.generate_private_key(ec.SECP256R1())
        self.kid = {"RS256": "rsa-" + secrets.token_hex(4), "ES256": "ec-" + secrets.token_hex(4)}

    def jwks(self):
        n = self.rsa.public_key().public_numbers()
        e = self.ec.public_key().public_numbers()
        return {
            "keys": [
                {
                    "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid["RS256"],
                    "n": b64u(n.n.to_bytes((n.n.bit_length() + 7) // 8, "big")),
                    "e": b64u(n.e.to_bytes((n.e.bit_length() + 7) // 8, "big")),
                },
                {
                    "kty": "EC", "use": "sig", "alg": "ES256", "kid": self.kid["ES256"], "crv": "P-256",
                    "x": b64u(e.x.to_bytes(32, "big")), "y": b64u(e.y.to_bytes(32, "big")),
                },
            ]
        }

    def sign(self, claims, alg="RS256", spare=False, header_alg=None):
        """A compact JWS of `claims`; with `spare`, by the key that is not published."""
        header = {"alg": header_alg or alg, "typ": "JWT", "kid": self.kid[alg]}
        signing_input = (b64u_json(header) + "." + b64u_json(claims)).encode()
        if alg == "RS256":
            key = self.spare_rsa if spare else self.rsa
            sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            key = self.spare_ec if spare else self.ec
            r, s = decode_dss_signature(key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing_input.decode() + "." + b64u(sig)

    @staticmethod
    def unsigned(claims):
        return b64u_json({"alg": "none", "typ": "JWT"}) + "." + b64u_json(claims) + "."


class State:
    """Everything the provider remembers, behind one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.next = {}  # provider -> the setting of POST /control/next
        self.codes = {}  # code -> grant
        self.tokens = {}  # access token -> grant
        self.requests = []  # token requests received

    def setting(self, provider):
        """The setting for an authorization now (its tamper taken: it applies once)."""
        with self.lock:
            current = self.next.get(provider)
            if current is None:
                current = {"sub": "default-" + provider, "email": f"default-{provider}@example.com",
                           "email_verified": True, "name": "Default User"}
                if provider == "github":
                    current["sub"] = "1"
            taken = dict(current)
            for once in ONCE:
                current.pop(once, None)
            return taken


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeProviders/1"

    # -- plumbing -----------------------------------------------------------------------------

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (time.strftime("%H:%M:%S"), fmt % args))

    @property
    def base(self):
        return self.server.base_url

    @property
    def state(self):
        return self.server.state

    def reply(self, status, body=None, content_type="application/json", headers=None):
        if body is None:
            data = b""
        elif isinstance(body, (bytes, str)):
            data = body.encode() if isinstance(body, str) else body
        else:
            data = json.dumps(body).encode()
        self.send_response(status)
        if data or content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def redirect(self, location):
        self.reply(302, b"", content_type=None, headers={"Location": location})

    def body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def form(self):
        """The form fields of the body (one value each; a repeated field is an error: None)."""
        pairs = urllib.parse.parse_qsl(self.body().decode("utf-8", "replace"), keep_blank_values=True)
        fields = {}
        for k, v in pairs:
            if k in fields:
                return None
            fields[k] = v
        return fields

    def query(self):
        return {k: v[-1] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query,
                                                           keep_blank_values=True).items()}

    def route(self):
        return urllib.parse.urlsplit(self.path).path.rstrip("/") or "/"

    def bearer(self):
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() in ("bearer", "token") and token:
            return token.strip()
        return None

    # -- dispatch -----------------------------------------------------------------------------

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method):
        routes = {
            ("GET", "/control/health"): lambda: self.reply(200, {"ok": True}),
            ("POST", "/control/next"): self.control_next,
            ("POST", "/control/reset"): self.control_reset,
            ("GET", "/control/requests"): self.control_requests,
            ("GET", "/oidc/.well-known/openid-configuration"): self.discovery,
            ("GET", "/oidc/jwks"): lambda: self.reply(200, self.server.keys.jwks()),
            ("GET", "/oidc/authorize"): lambda: self.authorize("oidc"),
            ("POST", "/oidc/token"): self.oidc_token,
            ("GET", "/oidc/userinfo"): self.userinfo,
            ("GET", "/github/login/oauth/authorize"): lambda: self.authorize("github"),
            ("POST", "/github/login/oauth/access_token"): self.github_token,
            ("GET", "/github/api/user"): self.github_user,
            ("GET", "/github/api/user/emails"): self.github_emails,
        }
        handler = routes.get((method, self.route()))
        if handler is None:
            self.body()
            known = any(path == self.route() for _, path in routes)
            return self.reply(405 if known else 404, {"error": "method not allowed" if known else "not found"})
        try:
            handler()
        except Exception as e:  # a bug here must show as a 500, not a dropped connection
            self.log_message("error: %r", e)
            self.reply(500, {"error": "server_error", "error_description": repr(e)})

    # -- control ------------------------------------------------------------------------------

    def control_next(self):
        try:
            setting = json.loads(self.body() or b"{}")
        except ValueError:
            return self.reply(400, {"error": "body is not JSON"})
        if not isinstance(setting, dict):
            return self.reply(400, {"error": "expected a JSON object"})
        provider = setting.pop("provider", "oidc")
        if provider not in ("oidc", "github"):
            return self.reply(400, {"error": "provider is oidc or github"})
        tamper = setting.get("tamper")
        if tamper is not None and tamper not in TAMPERS:
            return self.reply(400, {"error": f"tamper is one of {sorted(TAMPERS)} or null"})
        if not isinstance(setting.get("token_status", 500), int) or not isinstance(setting.get("token_delay", 0), (int, float)):
            return self.reply(400, {"error": "token_status is an HTTP status, token_delay a number of seconds"})
        if setting.get("alg", "RS256") not in ("RS256", "ES256"):
            return self.reply(400, {"error": "alg is RS256 or ES256"})
        if tamper is None:
            setting.pop("tamper", None)
        if "id" in setting:  # GitHub's name for it
            setting["sub"] = str(setting.pop("id"))
        setting.setdefault("sub", secrets.token_hex(8) if provider == "oidc" else str(secrets.randbelow(10**9)))
        with self.state.lock:
            self.state.next[provider] = setting
        self.reply(200, {"provider": provider, **setting})

    def control_reset(self):
        self.body()
        with self.state.lock:
            self.state.reset()
        self.reply(200, {"ok": True})

    def control_requests(self):
        with self.state.lock:
            seen = list(self.state.requests)
        self.reply(200, seen)

    # -- authorization (both providers) -------------------------------------------------------

    def authorize(self, provider):
        q = self.query()
        client_id, redirect_uri = q.get("client_id", ""), q.get("redirect_uri", "")
        # Errors about the client or the redirect URI are shown, never sent to that URI.
        if client_id not in CLIENTS[provider]:
            return self.reply(400, {"error": "invalid_client", "error_description": f"unknown client_id {client_id!r}"})
        parts = urllib.parse.urlsplit(redirect_uri)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
            return self.reply(400, {"error": "invalid_request", "error_description": "redirect_uri must be an absolute URL"})
        allowed = os.environ.get("FAKE_REDIRECT_URIS")
        if allowed and redirect_uri not in allowed.split(","):
            return self.reply(400, {"error": "invalid_request", "error_description": "redirect_uri not registered"})

        def back(params):
            if "state" in q:
                params["state"] = q["state"]
            sep = "&" if parts.query else "?"
            self.redirect(redirect_uri + sep + urllib.parse.urlencode(params))

        if provider == "oidc" and q.get("response_type") != "code":
            return back({"error": "unsupported_response_type"})
        if provider == "github" and q.get("response_type", "code") != "code":
            return back({"error": "unsupported_response_type"})
        scope = q.get("scope", "")
        if provider == "oidc" and "openid" not in scope.split():
            return back({"error": "invalid_scope", "error_description": "openid is required"})
        challenge, method = q.get("code_challenge"), q.get("code_challenge_method")
        if not challenge or method != "S256":
            return back({"error": "invalid_request", "error_description": "PKCE with S256 is required"})
        if not (43 <= len(challenge) <= 128):
            return back({"error": "invalid_request", "error_description": "code_challenge has the wrong length"})
        code = secrets.token_urlsafe(24)
        grant = {
            "provider": provider,
            "identity": self.state.setting(provider),
            "nonce": q.get("nonce"),
            "challenge": challenge,
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "scope": scope,
            "expires": time.time() + CODE_TTL,
        }
        with self.state.lock:
            self.state.codes[code] = grant
        back({"code": code})

    def client_auth(self, form):
        """(client_id, secret given or None, how) from HTTP Basic or the form; None when both."""
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            if "client_secret" in form:
                return None
            try:
                raw = base64.b64decode(auth[6:].strip(), validate=True).decode()
            except ValueError:
                return None
            cid, _, secret = raw.partition(":")
            return urllib.parse.unquote_plus(cid), urllib.parse.unquote_plus(secret), "client_secret_basic"
        if "client_secret" in form:
            return form.get("client_id", ""), form["client_secret"], "client_secret_post"
        return form.get("client_id", ""), None, "none"

    def outage(self, form):
        """Delays the answer, or answers it with an error status, as the code's setting asks:
        True when answered here."""
        with self.state.lock:
            grant = self.state.codes.get(form.get("code", ""))
        ident = grant["identity"] if grant else {}
        if ident.get("token_delay"):
            time.sleep(float(ident["token_delay"]))
        status = ident.get("token_status")
        if status:
            self.reply(status, {"error": "temporarily_unavailable", "error_description": f"told to answer {status}"})
            return True
        return False

    def redeem(self, provider, form):
        """Checks a token request: (grant, None) or (None, (error, description, http status))."""
        auth = self.client_auth(form)
        record = {"provider": provider, "at": time.time(), "auth": auth[2] if auth else "both",
                  "fields": sorted(form), "accept": self.headers.get("Accept"),
                  "user_agent": self.headers.get("User-Agent")}
        with self.state.lock:
            self.state.requests.append(record)
            del self.state.requests[:-200]

        def fail(error, description, status=400):
            record["outcome"] = error
            return None, (error, description, status)

        if auth is None:
            return fail("invalid_request", "more than one client authentication method")
        client_id, secret, _ = auth
        if client_id not in CLIENTS[provider]:
            return fail("invalid_client", "unknown client", 401)
        expected = CLIENTS[provider][client_id]
        if secret is not None and not secrets.compare_digest(secret.encode(), (expected or "").encode()):
            return fail("invalid_client", "wrong client secret", 401)
        if form.get("grant_type", "authorization_code" if provider == "github" else None) != "authorization_code":
            return fail("unsupported_grant_type", "grant_type must be authorization_code")
        with self.state.lock:
            grant = self.state.codes.pop(form.get("code", ""), None)  # single use, whatever follows
        if grant is None or grant["provider"] != provider or grant["expires"] < time.time():
            return fail("invalid_grant", "unknown, expired or used code")
        if grant["client_id"] != client_id:
            return fail("invalid_grant", "the code was issued to another client")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return fail("invalid_grant", "redirect_uri differs from the authorization's")
        verifier = form.get("code_verifier", "")
        if not (43 <= len(verifier) <= 128) or not secrets.compare_digest(s256(verifier), grant["challenge"]):
            return fail("invalid_grant", "code_verifier does not match the code_challenge")
        record["outcome"] = "ok"
        return grant, None

    # -- OpenID Connect -----------------------------------------------------------------------

    @property
    def issuer(self):
        return self.base + "/oidc"

    def discovery(self):
        iss = self.issuer
        self.reply(200, {
            "issuer": iss,
            "authorization_endpoint": iss + "/authorize",
            "token_endpoint": iss + "/token",
            "userinfo_endpoint": iss + "/userinfo",
            "jwks_uri": iss + "/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "grant_types_supported": ["authorization_code"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "email", "email_verified",
                                 "name", "given_name", "family_name"],
            "code_challenge_methods_supported": ["S256"],
        })

    def oidc_token(self):
        form = self.form()
        if form is None:
            return self.reply(400, {"error": "invalid_request", "error_description": "a field was repeated"})
        if self.outage(form):
            return
        grant, err = self.redeem("oidc", form)
        if err:
            error, description, status = err
            headers = {"WWW-Authenticate": 'Basic realm="fake"'} if status == 401 else None
            return self.reply(status, {"error": error, "error_description": description}, headers=headers)
        access = "oidc-at-" + secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.tokens[access] = grant
        self.reply(200, {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": 3600,
            "scope": grant["scope"],
            "id_token": self.id_token(grant, access),
        })

    def id_token(self, grant, access):
        ident = grant["identity"]
        tamper, alg = ident.get("tamper"), ident.get("alg", "RS256")
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": str(ident["sub"]),
            "aud": grant["client_id"],
            "azp": grant["client_id"],
            "iat": now,
            "auth_time": now,
            "exp": now + 300,
            "at_hash": b64u(hashlib.sha256(access.encode()).digest()[:16]),
        }
        if grant["nonce"] is not None:
            claims["nonce"] = grant["nonce"]
        for field in ("email", "email_verified", "name", "given_name", "family_name", "preferred_username",
                      "picture", "locale", "xms_edov", "tid"):
            if field in ident:
                claims[field] = ident[field]
        claims.update(ident.get("claims", {}))  # anything else the test wants in the token
        if tamper == "nonce":
            claims["nonce"] = "not-" + (grant["nonce"] or "the-nonce")
        elif tamper == "no_nonce":
            claims.pop("nonce", None)
        elif tamper == "aud":
            claims["aud"] = "someone-else"
            claims["azp"] = "someone-else"
        elif tamper == "azp":
            claims["aud"] = [grant["client_id"], "someone-else"]
            claims["azp"] = "someone-else"
        elif tamper == "iss":
            claims["iss"] = self.base + "/evil"
        elif tamper == "expired":
            claims["iat"] = claims["auth_time"] = now - 7200
            claims["exp"] = now - 3600
        elif tamper == "future_iat":
            claims["iat"] = claims["auth_time"] = now + 3600
            claims["exp"] = now + 7200
        keys = self.server.keys
        if tamper == "alg_none":
            return keys.unsigned(claims)
        token = keys.sign(claims, alg, spare=(tamper == "wrong_key"))
        if tamper == "signature":
            head, payload, sig = token.split(".")
            raw = bytearray(base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4)))
            raw[len(raw) // 2] ^= 0x01
            token = f"{head}.{payload}.{b64u(bytes(raw))}"
        return token

    def userinfo(self):
        with self.state.lock:
            grant = self.state.tokens.get(self.bearer() or "")
        if grant is None or grant["provider"] != "oidc":
            return self.reply(401, {"error": "invalid_token"}, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        ident = grant["identity"]
        info = {"sub": str(ident["sub"])}
        for field in ("email", "email_verified", "name", "given_name", "family_name"):
            if field in ident:
                info[field] = ident[field]
        self.reply(200, info)

    # -- GitHub -------------------------------------------------------------------------------

    def github_token(self):
        form = self.form()
        wants_json = "application/json" in (self.headers.get("Accept") or "")
        if form is None:
            grant, err = None, ("bad_verification_code", "a field was repeated", 200)
        elif self.outage(form):
            return
        else:
            grant, err = self.redeem("github", form)
        if err:
            error, description, _ = err
            # GitHub answers 200 with the error in the body.
            error = {"invalid_client": "incorrect_client_credentials", "invalid_grant": "bad_verification_code"}.get(error, error)
            if error == "bad_verification_code" and "redirect_uri" in description:
                error = "redirect_uri_mismatch"
            body = {"error": error, "error_description": description,
                    "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"}
        else:
            access = "gho_" + secrets.token_urlsafe(27)
            with self.state.lock:
                self.state.tokens[access] = grant
            scope = ",".join(s for s in grant["scope"].replace(",", " ").split())
            body = {"access_token": access, "token_type": "bearer", "scope": scope}
        if wants_json:
            return self.reply(200, body)
        self.reply(200, urllib.parse.urlencode(body), content_type="application/x-www-form-urlencoded; charset=utf-8")

    def github_grant(self):
        """The grant of the request's token, or None once an error was answered."""
        if not self.headers.get("User-Agent"):
            self.reply(403, "Request forbidden by administrative rules. Please make sure your request has a "
                            "User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required). "
                            "Check https://developer.github.com for other possible causes.\n",
                       content_type="text/plain; charset=utf-8")
            return None
        with self.state.lock:
            grant = self.state.tokens.get(self.bearer() or "")
        if grant is None or grant["provider"] != "github":
            self.reply(401, {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest",
                             "status": "401"})
            return None
        return grant

    def github_user(self):
        grant = self.github_grant()
        if grant is None:
            return
        ident = grant["identity"]
        sub = ident["sub"]
        login = ident.get("login") or "user" + str(sub)
        self.reply(200, {
            "login": login,
            "id": int(sub) if str(sub).isdigit() else sub,
            "node_id": "U_" + b64u(str(sub).encode()),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{sub}?v=4",
            "html_url": f"https://github.com/{login}",
            "type": "User",
            "site_admin": False,
            "name": ident.get("name"),
            "email": ident.get("public_email"),  # the public email: null unless set
            "created_at": "2015-01-01T00:00:00Z",
        }, headers={"X-OAuth-Scopes": grant["scope"].replace(" ", ", ")})

    def github_emails(self):
        grant = self.github_grant()
        if grant is None:
            return
        if "user:email" not in grant["scope"].replace(",", " ").split() and "user" not in grant["scope"].split():
            return self.reply(404, {"message": "Not Found", "documentation_url": "https://docs.github.com/rest/users/emails",
                                    "status": "404"})
        ident = grant["identity"]
        emails = ident.get("emails")
        if emails is None:
            emails = []
            if ident.get("email"):
                emails.append({"email": ident["email"], "primary": True,
                               "verified": ident.get("email_verified", True) is True, "visibility": "private"})
        self.reply(200, emails)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: fake_providers.py PORT")
    port = int(sys.argv[1])
    server = Server(("127.0.0.1", port), Handler)
    server.base_url = f"http://127.0.0.1:{port}"
    server.keys = Keys()
    server.state = State()

    def stop(*_):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    print(f"fake providers on {server.base_url}: OpenID Connect {server.base_url}/oidc, "
          f"GitHub {server.base_url}/github, control {server.base_url}/control", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
