//! `authctl jwt-key`: the JWT signing key in Secrets Manager, made and shown the way the template
//! wants it (JwtSigningKeySecretArn, JwtSigningKeyVersionId, JwtPublicKeys).

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use aws_sdk_secretsmanager::Client;
use gatehouse_core::tokens::{generate_ed25519_pem, JwtAlgorithm, SigningKey};

use crate::args::Args;
use crate::Fail;

/// The staging label of a new version: not AWSCURRENT, so that no function signs with it before
/// a deploy lists its public key and names its version.
pub const PENDING_STAGE: &str = "GATEHOUSE_PENDING";

fn aws_fail(what: &str, e: &impl ProvideErrorMetadata) -> Fail {
    let code = e.code().unwrap_or("no answer");
    let hint = match code {
        "AccessDeniedException" => " (the caller needs secretsmanager:CreateSecret / PutSecretValue / GetSecretValue)",
        "ResourceNotFoundException" => " (no such secret: check --secret and the region)",
        _ => "",
    };
    Fail::runtime(format!("{what}: {code}{hint}"))
}

async fn client() -> Result<Client, Fail> {
    let sdk = gatehouse_core::aws::aws_config().await;
    if sdk.region().is_none_or(|r| r.as_ref().trim().is_empty()) {
        return Err(Fail::usage("no AWS region configured: set AWS_REGION (or a profile with a region)"));
    }
    Ok(Client::new(&sdk))
}

/// `kid=x` of an Ed25519 PEM, under `kid` or its derived one.
fn pair(pem: &str, kid: Option<&str>) -> Result<String, Fail> {
    let key = SigningKey::parse(JwtAlgorithm::EdDsa, pem.trim())
        .map_err(|e| Fail::refused(format!("the secret does not hold an Ed25519 key: {e}")))?;
    let derived = key.public().ok_or_else(|| Fail::runtime("no public key"))?.pair();
    Ok(match kid {
        Some(kid) => format!("{kid}={}", derived.split_once('=').map_or("", |(_, x)| x)),
        None => derived,
    })
}

fn check_kid(kid: Option<&str>) -> Result<(), Fail> {
    match kid {
        Some(k)
            if k.is_empty() || k.len() > 128 || !k.chars().all(|c| c.is_ascii_graphic() && c != ',' && c != '=') =>
        {
            Err(Fail::usage("--kid: 1 to 128 visible ASCII characters, without ',' or '='"))
        }
        _ => Ok(()),
    }
}

pub async fn run(args: &Args) -> Result<(), Fail> {
    let secret = args.value("secret").ok_or_else(|| Fail::usage("--secret is required"))?;
    let kid = args.value("kid");
    check_kid(kid)?;
    let sm = client().await?;
    if args.switch("show") {
        let out = sm
            .get_secret_value()
            .secret_id(secret)
            .set_version_id(args.value("version").map(str::to_owned))
            .send()
            .await
            .map_err(|e| aws_fail("GetSecretValue", &e))?;
        let pem = out.secret_string().ok_or_else(|| Fail::refused("the secret holds no SecretString"))?;
        print_parameters(out.arn().unwrap_or(secret), out.version_id().unwrap_or(""), &pair(pem, kid)?);
        return Ok(());
    }
    if args.value("version").is_some() {
        return Err(Fail::usage("--version goes with --show"));
    }
    let pem = generate_ed25519_pem().map_err(Fail::runtime)?;
    let public = pair(&pem, kid)?;
    let created =
        sm.create_secret().name(secret).secret_string(&pem).description("Gatehouse JWT signing key").send().await;
    let (arn, version, first) = match created {
        Ok(out) => (out.arn().unwrap_or(secret).to_owned(), out.version_id().unwrap_or("").to_owned(), true),
        Err(e) if e.code() == Some("ResourceExistsException") => {
            let out = sm
                .put_secret_value()
                .secret_id(secret)
                .secret_string(&pem)
                .version_stages(PENDING_STAGE)
                .send()
                .await
                .map_err(|e| aws_fail("PutSecretValue", &e))?;
            (out.arn().unwrap_or(secret).to_owned(), out.version_id().unwrap_or("").to_owned(), false)
        }
        Err(e) => return Err(aws_fail("CreateSecret", &e)),
    };
    print_parameters(&arn, &version, &public);
    if first {
        eprintln!(
            "authctl: created the secret; put these three lines in samconfig.toml's parameter_overrides and deploy"
        );
    } else {
        eprintln!(
            "authctl: added a new version, labelled {PENDING_STAGE} (AWSCURRENT did not move). Rotate in two deploys: \
             first add {public} to JwtPublicKeys beside the current key; once that is deployed, set \
             JwtSigningKeyVersionId={version}. A refresh lifetime later, drop the old key from JwtPublicKeys."
        );
    }
    Ok(())
}

fn print_parameters(arn: &str, version: &str, public: &str) {
    println!("JwtSigningKeySecretArn={arn}");
    println!("JwtSigningKeyVersionId={version}");
    println!("JwtPublicKeys={public}");
}
