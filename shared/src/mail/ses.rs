//! The SES v2 mailer: multipart text + HTML through `SendEmail`.

use async_trait::async_trait;
use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use aws_sdk_sesv2::Client;

use crate::ports::{MailError, Mailer, OutgoingEmail};

#[derive(Clone, Debug)]
pub struct SesMailer {
    client: crate::aws::LazyClient<Client>,
    from: String,
    configuration_set: Option<String>,
}

impl SesMailer {
    pub fn new(client: Client, from: impl Into<String>) -> Self {
        Self { client: crate::aws::LazyClient::ready(client, Client::new), from: from.into(), configuration_set: None }
    }

    /// A mailer whose client is built on its first send (see [`crate::aws::LazyClient`]).
    pub fn lazy(client: crate::aws::LazyClient<Client>, from: impl Into<String>) -> Self {
        Self { client, from: from.into(), configuration_set: None }
    }

    /// Names this SES configuration set on every email (`SES_CONFIGURATION_SET`).
    pub fn with_configuration_set(mut self, name: Option<String>) -> Self {
        self.configuration_set = name;
        self
    }

    /// Registers the sender identity (the local emulator requires one before it accepts mail).
    pub async fn verify_sender(&self) -> Result<(), MailError> {
        match self.client.get().create_email_identity().email_identity(&self.from).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some("AlreadyExistsException") => Ok(()),
            Err(e) => Err(MailError(format!("CreateEmailIdentity: {}", e.code().unwrap_or("unknown")))),
        }
    }
}

fn utf8(data: &str) -> Result<Content, MailError> {
    Content::builder().data(data).charset("UTF-8").build().map_err(|e| MailError(e.to_string()))
}

#[async_trait]
impl Mailer for SesMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let message = Message::builder()
            .subject(utf8(&email.subject)?)
            .body(Body::builder().text(utf8(&email.text)?).html(utf8(&email.html)?).build())
            .build();
        self.client
            .get()
            .send_email()
            .from_email_address(&self.from)
            .set_configuration_set_name(self.configuration_set.clone())
            .destination(Destination::builder().to_addresses(&email.to).build())
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| MailError(format!("SendEmail: {}", e.code().unwrap_or("unknown"))))?;
        Ok(())
    }
}
