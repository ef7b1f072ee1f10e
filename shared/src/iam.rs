//! Evidence for least privilege (feature `test-util`, tests only): what each function's
//! handler asks of its ports, and what AWS calls each port operation makes. The template's IAM
//! roles are checked against it (tools/infra/test_iam.py): nothing a function does may be left
//! ungranted, nothing granted may go unused.
//!
//! Two kinds of records, appended as JSON lines to a file of this process in the directory that
//! `GATEHOUSE_IAM_EVIDENCE` names (nothing is recorded without it):
//! - `{"kind": "use", "function": "register", "call": "store.create_user"}`: while a test routes
//!   a request to a function ([`as_function`]), every port call it makes: store operations
//!   (through [`crate::store::FaultyStore`], which every test app is wrapped in), emails sent
//!   ([`RecordingMailer`]) and signing keys asked for ([`RecordingKeys`], `keys.sign` or
//!   `keys.verify`);
//! - `{"kind": "aws", "call": "store.create_user", "action": "dynamodb:PutItem", "resource":
//!   "table"}`: while a port call runs ([`in_port_call`]) against the emulator, every AWS operation
//!   its SDK client sends ([`Interceptor`]), mapped to IAM actions by AWS's rules: a
//!   `TransactWriteItems` needs the action of each of its items (`PutItem`, `UpdateItem`,
//!   `DeleteItem`, `ConditionCheckItem`), not an action of its own; a `Query` on an index needs
//!   the index's ARN.

use std::collections::HashSet;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;

use crate::ports::{KeyUse, MailError, Mailer, OutgoingEmail, SecretKeys};
use crate::tokens::{SigningKey, TokenError};

tokio::task_local! {
    static FUNCTION: &'static str;
    static PORT_CALL: (&'static str, &'static str);
}

/// Runs `fut` as the function `name` (the binary that would serve the request).
pub async fn as_function<F: Future>(name: &'static str, fut: F) -> F::Output {
    FUNCTION.scope(name, fut).await
}

/// Runs the call `call` of the port `port` (`store` `create_user`, `mailer` `send`, ...):
/// recorded as a use by the current function, if any, and named in the AWS calls it makes.
pub async fn in_port_call<F: Future>(port: &'static str, call: &'static str, fut: F) -> F::Output {
    used(port, call);
    PORT_CALL.scope((port, call), fut).await
}

/// Records that the current function, if any, made the port call: even when a fault then keeps
/// it from reaching the port, the function needed it.
pub fn used(port: &'static str, call: &'static str) {
    if let Ok(function) = FUNCTION.try_with(|f| *f) {
        record(&[("kind", "use"), ("function", function), ("call", &format!("{port}.{call}"))]);
    }
}

/// Runs `fut` as the port call, naming it in the AWS calls it makes (see [`Interceptor`]).
pub async fn scoped<F: Future>(port: &'static str, call: &'static str, fut: F) -> F::Output {
    PORT_CALL.scope((port, call), fut).await
}

struct Sink {
    file: std::fs::File,
    seen: HashSet<String>,
}

/// Appends one record, once per process.
fn record(fields: &[(&str, &str)]) {
    static SINK: OnceLock<Option<Mutex<Sink>>> = OnceLock::new();
    let sink = SINK.get_or_init(|| {
        let dir = std::env::var_os("GATEHOUSE_IAM_EVIDENCE")?;
        std::fs::create_dir_all(&dir).ok()?;
        let path = std::path::Path::new(&dir).join(format!("{}.jsonl", std::process::id()));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path).ok()?;
        Some(Mutex::new(Sink { file, seen: HashSet::new() }))
    });
    let Some(sink) = sink else { return };
    let line = serde_json::Value::Object(fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).into())).collect());
    let line = line.to_string();
    let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
    if sink.seen.insert(line.clone()) {
        let _ = writeln!(sink.file, "{line}");
    }
}

/// The IAM actions (and what they act on) of one AWS operation, by AWS's authorization rules.
fn actions(
    call: &str,
    service: &str,
    operation: &str,
    input: &aws_smithy_runtime_api::client::interceptors::context::Input,
) -> Vec<(String, String)> {
    use aws_sdk_dynamodb::operation::query::QueryInput;
    use aws_sdk_dynamodb::operation::scan::ScanInput;
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
    use aws_sdk_sesv2::operation::send_email::SendEmailInput;
    let table = || "table".to_owned();
    match (service, operation) {
        ("DynamoDB", "TransactWriteItems") => input
            .downcast_ref::<TransactWriteItemsInput>()
            .map(|i| {
                i.transact_items()
                    .iter()
                    .filter_map(|item| match (&item.put, &item.update, &item.delete, &item.condition_check) {
                        (Some(_), ..) => Some("dynamodb:PutItem"),
                        (_, Some(_), ..) => Some("dynamodb:UpdateItem"),
                        (_, _, Some(_), _) => Some("dynamodb:DeleteItem"),
                        (.., Some(_)) => Some("dynamodb:ConditionCheckItem"),
                        _ => None,
                    })
                    .map(|a| (a.to_owned(), table()))
                    .collect()
            })
            .unwrap_or_default(),
        ("DynamoDB", "Query") => {
            let index = input.downcast_ref::<QueryInput>().and_then(|i| i.index_name().map(|n| format!("index/{n}")));
            vec![("dynamodb:Query".into(), index.unwrap_or_else(table))]
        }
        ("DynamoDB", "Scan") => {
            let index = input.downcast_ref::<ScanInput>().and_then(|i| i.index_name().map(|n| format!("index/{n}")));
            vec![("dynamodb:Scan".into(), index.unwrap_or_else(table))]
        }
        ("DynamoDB", op) => vec![(format!("dynamodb:{op}"), table())],
        ("SESv2", "SendEmail") => {
            let mut out = vec![("ses:SendEmail".to_owned(), "ses-identity".to_owned())];
            if input.downcast_ref::<SendEmailInput>().and_then(|i| i.configuration_set_name()).is_some() {
                out.push(("ses:SendEmail".into(), "ses-configuration-set".into()));
            }
            out
        }
        ("SESv2", op) => vec![(format!("ses:{op}"), "ses".into())],
        // Three secrets: the code key's (read for `keys.code`), the providers' client secrets
        // (`keys.social`) and the signing key's.
        ("Secrets Manager", op) => {
            let secret = match call {
                "keys.code" => "code-secret",
                "keys.social" => "social-secret",
                _ => "secret",
            };
            vec![(format!("secretsmanager:{op}"), secret.into())]
        }
        (other, op) => vec![(format!("{other}:{op}"), "unknown".into())],
    }
}

/// An SDK interceptor recording the IAM actions of every operation a client sends, named after
/// the port call it runs in. Install it on the clients of the emulator tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct Interceptor;

impl Intercept for Interceptor {
    fn name(&self) -> &'static str {
        "gatehouse-iam-evidence"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else { return Ok(()) };
        let call = PORT_CALL.try_with(|(port, call)| format!("{port}.{call}")).unwrap_or_else(|_| "-".into());
        for (action, resource) in actions(&call, meta.service(), meta.name(), context.input()) {
            record(&[("kind", "aws"), ("call", &call), ("action", &action), ("resource", &resource)]);
        }
        Ok(())
    }
}

/// A mailer that records each send as the port call `mailer.send`.
pub struct RecordingMailer(pub Arc<dyn Mailer>);

#[async_trait]
impl Mailer for RecordingMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        in_port_call("mailer", "send", self.0.send(email)).await
    }
}

/// A key source that records each request for the key as `keys.sign` or `keys.verify`.
pub struct RecordingKeys(pub Arc<dyn SecretKeys>);

#[async_trait]
impl SecretKeys for RecordingKeys {
    async fn signing_key(&self, purpose: KeyUse) -> Result<Arc<SigningKey>, TokenError> {
        let call = match purpose {
            KeyUse::Sign => "sign",
            KeyUse::Verify => "verify",
        };
        in_port_call("keys", call, self.0.signing_key(purpose)).await
    }

    async fn code_key(&self) -> Result<Arc<crate::keys::CodeKey>, TokenError> {
        in_port_call("keys", "code", self.0.code_key()).await
    }

    async fn client_secrets(&self) -> Result<Arc<crate::social::ClientSecrets>, TokenError> {
        in_port_call("keys", "social", self.0.client_secrets()).await
    }
}
