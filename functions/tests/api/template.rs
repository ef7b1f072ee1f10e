//! `infra/template.yaml` beyond its routes: every setting the code reads is a template parameter
//! passed to the functions (and a row of the README's settings table), the parameters' defaults
//! are the code's defaults, and the operational parts (alarms, log retention, the table's
//! protections, the outputs) are there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use gatehouse_core::Settings;
use serde_yaml_ng::value::{Tag, Value};

fn root(rel: &str) -> String {
    format!("{}/../{rel}", env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn template() -> Value {
    serde_yaml_ng::from_str(&read("infra/template.yaml")).unwrap()
}

/// The value under a CloudFormation short-form tag (`!Ref X` -> `X`), if `v` carries that tag.
fn tagged<'a>(v: &'a Value, tag: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == Tag::new(tag) => Some(&t.value),
        _ => None,
    }
}

fn ref_name(v: &Value) -> Option<&str> {
    tagged(v, "Ref").and_then(Value::as_str)
}

/// Variables the functions get that the settings code does not read, and why.
const NOT_SETTINGS: &[(&str, &str)] = &[("RUST_LOG", "log filter, read by the tracing subscriber")];

/// Settings the template deliberately does not pass, and why.
const LOCAL_ONLY: &[(&str, &str)] = &[
    (
        "JWT_SIGNING_KEY",
        "the key itself, for the local stack; deployed functions read it from Secrets Manager (JWT_SIGNING_KEY_SECRET_ARN)",
    ),
    ("CODE_KEY", "the code key itself, for the local stack; deployed functions read CODE_KEY_SECRET_ARN"),
    (
        "SOCIAL_CLIENT_SECRETS",
        "the providers' client secrets themselves, for the local stack; deployed functions read SOCIAL_CLIENT_SECRETS_SECRET_ARN",
    ),
];

/// README rows that are not template variables, and why.
const README_ONLY: &[(&str, &str)] = &[
    ("AWS_ENDPOINT_URL", "local only: points the SDK at the emulator"),
    ("AWS_REGION", "set by Lambda; read by shared/src/aws.rs, not by the settings"),
    ("AWS_ACCESS_KEY_ID", "set by Lambda (the execution role's credentials); read by shared/src/aws.rs"),
    ("AWS_SECRET_ACCESS_KEY", "set by Lambda; read by shared/src/aws.rs"),
    ("AWS_SESSION_TOKEN", "set by Lambda; read by the SDK's environment credential provider"),
];

/// Every variable `Settings::from_map` reads: the first argument of its readers (`env.get("X")`,
/// `env.flag("X", ..)`, `url("X", ..)`, `ConfigError::new("X", ..)` ...) in shared/src/config.rs,
/// outside its tests.
fn config_variables() -> BTreeSet<String> {
    const READERS: &[&str] =
        &["get", "required", "flag", "number", "duration", "duration_allow_zero", "rate", "url", "new"];
    let text = read("shared/src/config.rs");
    let code = text.split("#[cfg(test)]").next().unwrap();
    let mut names = BTreeSet::new();
    for (i, _) in code.match_indices("(\"") {
        let before = &code[..i];
        let reader = &before[before.rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(0, |p| p + 1)..];
        let literal = code[i + 2..].split('"').next().unwrap();
        let is_name = literal.starts_with(|c: char| c.is_ascii_uppercase())
            && literal.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
        if READERS.contains(&reader) && is_name {
            names.insert(literal.to_owned());
        }
    }
    names
}

fn environment(t: &Value) -> BTreeMap<String, Value> {
    t["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .expect("Globals.Function.Environment.Variables")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone()))
        .collect()
}

#[test]
fn config_reads_the_settings_the_scan_expects() {
    // Guards the scan itself: a change in how config.rs names its variables must not make the
    // tests below pass on an empty set.
    let names = config_variables();
    for known in ["EMAIL_FROM", "JWT_SIGNING_KEY", "ACCESS_TOKEN_LIFETIME", "RATE_RESET_IP", "PASSWORD_MIN_LENGTH"] {
        assert!(names.contains(known), "{known} not found in config.rs");
    }
    assert!(names.len() >= 45, "only {} variables found in config.rs: {names:?}", names.len());
}

#[test]
fn every_setting_is_passed_to_the_functions() {
    let t = template();
    let env: BTreeSet<String> = environment(&t).into_keys().collect();
    let mut expected = config_variables();
    expected.extend(NOT_SETTINGS.iter().map(|(n, _)| (*n).to_owned()));
    for (local, _) in LOCAL_ONLY {
        expected.remove(*local);
    }
    let missing: Vec<_> = expected.difference(&env).collect();
    let unknown: Vec<_> = env.difference(&expected).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "settings missing from Globals.Function.Environment: {missing:?}\nvariables no code reads: {unknown:?}"
    );
}

#[test]
fn every_variable_comes_from_a_parameter_and_secrets_from_secrets_manager() {
    let t = template();
    let params = t["Parameters"].as_mapping().unwrap();
    for (var, value) in environment(&t) {
        match var.as_str() {
            "TABLE_NAME" => assert_eq!(ref_name(&value), Some("Table"), "TABLE_NAME is the stack's table"),
            "CODE_KEY_SECRET_ARN" => {
                assert_eq!(ref_name(&value), Some("CodeKeySecret"), "the code key is the stack's generated secret")
            }
            "EMAIL_TEMPLATES_DIR" => {
                // Where the layer of the EmailTemplatesLayer parameter is mounted, when one is given.
                let cond = tagged(&value, "If").and_then(Value::as_sequence).expect("EMAIL_TEMPLATES_DIR is an !If");
                assert_eq!(cond[0].as_str(), Some("HasEmailTemplates"));
                assert_eq!((cond[1].as_str(), cond[2].as_str()), (Some("/opt/email-templates"), Some("")));
                let layers = tagged(&t["Globals"]["Function"]["Layers"], "If").and_then(Value::as_sequence);
                let layers = layers.expect("the functions' Layers are an !If on the same condition");
                assert_eq!(layers[0].as_str(), Some("HasEmailTemplates"));
                assert_eq!(ref_name(&layers[1][0]), Some("EmailTemplatesLayer"));
            }
            "JWT_SIGNING_KEY" => panic!(
                "the signing key is read from Secrets Manager by the functions that sign (JWT_SIGNING_KEY_SECRET_ARN); \
                 as a variable it would show in every function's configuration"
            ),
            _ => {
                let name = ref_name(&value).unwrap_or_else(|| panic!("{var} is not a !Ref to a parameter"));
                assert!(params.contains_key(name), "{var} refers to {name}, which is not a parameter");
            }
        }
    }
    // No parameter carries a secret value: the signing key's secret is named, not passed, and
    // anything else that looks secret must at least be NoEcho.
    for (name, p) in params {
        let name = name.as_str().unwrap();
        let lower = name.to_ascii_lowercase();
        let names_a_secret =
            ["JwtSigningKeySecretArn", "JwtSigningKeyVersionId", "SocialClientSecretsArn"].contains(&name);
        if !names_a_secret && ["secret", "pepper", "private"].iter().any(|w| lower.contains(w)) {
            assert_eq!(p["NoEcho"].as_bool(), Some(true), "{name} looks secret: NoEcho");
        }
    }
}

/// The template's variables with every parameter at its default (and the few without one given
/// sample values), as the functions would see them.
fn template_defaults(t: &Value) -> HashMap<String, String> {
    let samples: HashMap<&str, &str> = [
        ("EmailFrom", "no-reply@example.com"),
        ("FrontendDomain", "app.example.com"),
        ("JwtSigningKeySecretArn", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gatehouse/jwt-AbCdEf"),
    ]
    .into();
    let mut vars = HashMap::new();
    for (var, value) in environment(t) {
        let Some(param) = ref_name(&value) else { continue };
        if param == "Table" || param == "CodeKeySecret" {
            continue;
        }
        let default = match &t["Parameters"][param]["Default"] {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Null => samples.get(param).unwrap_or_else(|| panic!("{param} has no default")).to_string(),
            other => panic!("{param}: unexpected default {other:?}"),
        };
        vars.insert(var, default);
    }
    // EdDSA (the default) with the key in Secrets Manager needs the public keys: a sample one.
    vars.insert("JWT_PUBLIC_KEYS".into(), sample_public_key().1);
    // CodeKeySecret is the stack's own secret: its ARN is known once deployed.
    vars.insert(
        "CODE_KEY_SECRET_ARN".into(),
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:gatehouse-CodeKeySecret-AbCdEf".into(),
    );
    vars
}

/// A fresh Ed25519 key: (private PEM, `kid=x` pair).
fn sample_public_key() -> (String, String) {
    let pem = gatehouse_core::tokens::generate_ed25519_pem().unwrap();
    let key = gatehouse_core::tokens::SigningKey::parse(gatehouse_core::tokens::JwtAlgorithm::EdDsa, &pem).unwrap();
    let pair = key.public().unwrap().pair();
    (pem, pair)
}

/// The settings a deployer tunes, printed for comparison (the signing key and the names of
/// the table and sender left out).
fn tunables(s: &Settings) -> Vec<(&'static str, String)> {
    macro_rules! fields {
        ($($f:ident),* $(,)?) => { vec![$((stringify!($f), format!("{:?}", s.$f))),*] };
    }
    fields!(
        site_name,
        protocol,
        activation_url,
        password_reset_confirm_url,
        email_change_confirm_url,
        code_format,
        send_activation_email,
        send_confirmation_email,
        user_create_password_retype,
        set_password_retype,
        password_reset_confirm_retype,
        set_username_retype,
        logout_on_password_change,
        password_changed_email_confirmation,
        password_reset_show_email_not_found,
        email_change_verification,
        login_after_activation,
        hide_users,
        update_last_login,
        delete_me_mode,
        profile_updated_email,
        audit_retention,
        password_reset_timeout,
        email_change_timeout,
        timing_floor,
        login_failure_floor,
        rate_login_failures_ip,
        rate_register_ip,
        rate_resend_ip,
        rate_reset_ip,
        login_lockout_threshold,
        login_lockout_max,
        email_cooldown,
        activation_token_lifetime,
        unactivated_account_lifetime,
        access_token_lifetime,
        refresh_token_lifetime,
        session_lifetime,
        rotate_refresh_tokens,
        jwt_algorithm,
        refresh_reuse_grace,
        jwt_issuer,
        jwt_audience,
        jwt_leeway,
        argon2,
        password_min_length,
    )
}

#[test]
fn parameter_defaults_are_the_code_defaults() {
    let t = template();
    let vars = template_defaults(&t);
    let deployed = Settings::from_map(&vars).unwrap_or_else(|e| panic!("the template's defaults are refused: {e}"));
    let minimal: HashMap<String, String> = [
        ("EMAIL_FROM".to_owned(), vars["EMAIL_FROM"].clone()),
        ("JWT_SIGNING_KEY".to_owned(), sample_public_key().0),
        ("FRONTEND_DOMAIN".to_owned(), "app.example.com".to_owned()),
    ]
    .into();
    let coded = Settings::from_map(&minimal).unwrap();
    let differ: Vec<_> = tunables(&deployed).into_iter().zip(tunables(&coded)).filter(|(a, b)| a != b).collect();
    assert!(differ.is_empty(), "template default vs code default: {differ:?}");
    assert!(matches!(deployed.jwt_key, gatehouse_core::config::JwtKeySource::SecretsManager { version: None, .. }));
    assert_eq!(deployed.ses_configuration_set, None);
}

#[test]
fn readme_settings_table_lists_every_setting() {
    let readme = read("README.md");
    let section = readme.split("\n## Settings\n").nth(1).expect("README has a Settings section");
    let section = section.split("\n## ").next().unwrap();
    let mut listed = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first_cell = row.split('|').nth(1).unwrap();
        listed.extend(first_cell.split('`').skip(1).step_by(2).map(str::to_owned));
    }
    let mut expected = config_variables();
    expected.extend(NOT_SETTINGS.iter().chain(README_ONLY).map(|(n, _)| (*n).to_owned()));
    let missing: Vec<_> = expected.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&expected).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "not in the README table: {missing:?}\nno such setting: {unknown:?}"
    );
}

fn resources(t: &Value) -> Vec<(String, Value)> {
    t["Resources"].as_mapping().unwrap().iter().map(|(k, v)| (k.as_str().unwrap().to_owned(), v.clone())).collect()
}

fn of_type(t: &Value, ty: &str) -> Vec<(String, Value)> {
    resources(t).into_iter().filter(|(_, r)| r["Type"].as_str() == Some(ty)).collect()
}

#[test]
fn alarms_cover_api_5xx_and_every_function() {
    let t = template();
    let alarms = of_type(&t, "AWS::CloudWatch::Alarm");
    let api = alarms
        .iter()
        .find(|(_, a)| a["Properties"]["Namespace"].as_str() == Some("AWS/ApiGateway"))
        .expect("an alarm on the API");
    let p = &api.1["Properties"];
    assert_eq!(p["MetricName"].as_str(), Some("5xx"));
    assert_eq!(p["Dimensions"][0]["Name"].as_str(), Some("ApiId"));
    assert_eq!(ref_name(&p["Dimensions"][0]["Value"]), Some("HttpApi"));

    // Every function: one alarm over its Errors and Throttles.
    let watched = |function: &str, metric: &str| {
        alarms.iter().find(|(_, a)| {
            a["Properties"]["Metrics"].as_sequence().into_iter().flatten().any(|m| {
                let metric_def = &m["MetricStat"]["Metric"];
                metric_def["Namespace"].as_str() == Some("AWS/Lambda")
                    && metric_def["MetricName"].as_str() == Some(metric)
                    && ref_name(&metric_def["Dimensions"][0]["Value"]) == Some(function)
            })
        })
    };
    let functions = of_type(&t, "AWS::Serverless::Function");
    assert_eq!(functions.len(), std::fs::read_dir(root("functions/lambdas/src/bin")).unwrap().count());
    let mut function_alarms = BTreeSet::new();
    for (name, _) in &functions {
        let errors = watched(name, "Errors").unwrap_or_else(|| panic!("no alarm on {name}'s Errors"));
        let throttles = watched(name, "Throttles").unwrap_or_else(|| panic!("no alarm on {name}'s Throttles"));
        assert_eq!(errors.0, throttles.0);
        assert_eq!(errors.1["Properties"]["Threshold"].as_u64(), Some(1));
        function_alarms.insert(errors.0.clone());
    }

    // One composite alarm over all of them notifies the optional topic.
    let composite = of_type(&t, "AWS::CloudWatch::CompositeAlarm");
    assert_eq!(composite.len(), 1);
    let cp = &composite[0].1["Properties"];
    let rule = tagged(&cp["AlarmRule"], "Sub").and_then(Value::as_str).expect("AlarmRule is a !Sub");
    for (name, _) in &alarms {
        assert!(rule.contains(&format!("ALARM(\"${{{name}}}\")")), "composite alarm misses {name}");
    }
    // Beside them: the API's 5xx, and audit entries that could not be written (the metric the
    // functions emit in CloudWatch's embedded metric format, per table).
    let audit = alarms
        .iter()
        .find(|(_, a)| a["Properties"]["MetricName"].as_str() == Some("AuditNotWritten"))
        .expect("an alarm on audit entries not written");
    let p = &audit.1["Properties"];
    assert_eq!(p["Namespace"].as_str(), Some("Gatehouse"));
    assert_eq!(p["Dimensions"][0]["Name"].as_str(), Some("Table"));
    assert_eq!(ref_name(&p["Dimensions"][0]["Value"]), Some("Table"));
    assert_eq!(p["Threshold"].as_u64(), Some(1));
    assert_eq!(alarms.len(), function_alarms.len() + 2);
    for key in ["AlarmActions", "OKActions"] {
        let cond = tagged(&cp[key], "If").and_then(Value::as_sequence).expect("actions only with a topic");
        assert_eq!(cond[0].as_str(), Some("HasAlarmTopic"));
    }
    assert_eq!(t["Parameters"]["AlarmTopicArn"]["Default"].as_str(), Some(""));
}

#[test]
fn logs_table_and_outputs() {
    let t = template();
    // Each function writes to a log group the stack creates first (LoggingConfig), named after
    // the stack and the binary: a group named after the function itself (/aws/lambda/<name>)
    // would be created after the function, racing the function's first log write.
    let groups = of_type(&t, "AWS::Logs::LogGroup");
    for (name, f) in of_type(&t, "AWS::Serverless::Function") {
        let group_id = ref_name(&f["Properties"]["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{name} has no LoggingConfig.LogGroup: !Ref <group>"));
        let group =
            groups.iter().find(|(id, _)| id == group_id).unwrap_or_else(|| panic!("{group_id} is not a log group"));
        let binary = f["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap();
        let want = format!("/aws/lambda/${{AWS::StackName}}-{binary}");
        assert_eq!(tagged(&group.1["Properties"]["LogGroupName"], "Sub").and_then(Value::as_str), Some(want.as_str()));
        assert_eq!(ref_name(&group.1["Properties"]["RetentionInDays"]), Some("LogRetentionDays"));
    }
    let access = &t["Resources"]["HttpApi"]["Properties"]["AccessLogSettings"];
    assert!(access["Format"].as_str().is_some_and(|f| !f.contains("$context.requestBody")));
    let table = &t["Resources"]["Table"]["Properties"];
    assert_eq!(table["TimeToLiveSpecification"]["AttributeName"].as_str(), Some("expires_at"));
    assert_eq!(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(), Some(true));
    assert_eq!(ref_name(&table["DeletionProtectionEnabled"]), Some("DeletionProtection"));
    let url = |name: &str| tagged(&t["Outputs"][name]["Value"], "Sub").and_then(Value::as_str).map(str::to_owned);
    let api = url("ApiUrl").expect("output ApiUrl");
    assert!(api.starts_with("https://${HttpApi}.execute-api."));
    assert_eq!(url("JwksUrl"), Some(format!("{api}/auth/.well-known/jwks.json")));
}

/// The lines of one `[section]` of the root Cargo.toml (comments and blank lines left out).
fn cargo_section(name: &str) -> Vec<String> {
    let text = read("Cargo.toml");
    let header = format!("[{name}]");
    let mut lines = text.lines().skip_while(|l| l.trim() != header).skip(1);
    let mut out = Vec::new();
    for line in lines.by_ref() {
        let line = line.trim();
        if line.starts_with('[') {
            break;
        }
        if !line.is_empty() && !line.starts_with('#') {
            out.push(line.to_owned());
        }
    }
    out
}

#[test]
fn watch_router_equals_the_route_table() {
    // Each line: "/path" = [{ method = "GET", function = "users" }, ...]
    let mut routed = BTreeSet::new();
    for line in cargo_section("workspace.metadata.lambda.watch.router") {
        let (path, routes) = line.split_once(" = ").unwrap_or_else(|| panic!("router line {line}"));
        let path = path.trim_matches('"');
        for route in routes.split("{ ").skip(1) {
            let field = |key: &str| route.split(&format!("{key} = \"")).nth(1).and_then(|r| r.split('"').next());
            let (method, function) = (field("method").unwrap(), field("function").unwrap());
            assert!(routed.insert((method.to_owned(), path.to_owned(), function.to_owned())), "{method} {path} twice");
        }
    }
    let mut expected = BTreeSet::new();
    for r in gatehouse_functions::routes::ROUTES {
        // The root has one form only.
        let forms =
            if r.path == "/" { vec![r.path.to_owned()] } else { vec![r.path.to_owned(), format!("{}/", r.path)] };
        for path in forms {
            expected.insert((r.method.to_owned(), path, r.function.to_owned()));
        }
    }
    let missing: Vec<_> = expected.difference(&routed).collect();
    let extra: Vec<_> = routed.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "not routed by cargo lambda watch: {missing:?}\nnot routes: {extra:?}"
    );
}

#[test]
fn watch_environment_is_a_valid_local_configuration() {
    let mut vars: HashMap<String, String> = cargo_section("workspace.metadata.lambda.env")
        .iter()
        .map(|line| {
            let (k, v) = line.split_once(" = ").unwrap_or_else(|| panic!("env line {line}"));
            (k.to_owned(), v.trim_matches('"').to_owned())
        })
        .collect();
    // cargo-lambda lets these values win over --env-file: what differs per machine stays out.
    for per_machine in ["AWS_ENDPOINT_URL", "JWT_SIGNING_KEY"] {
        assert!(!vars.contains_key(per_machine), "{per_machine} belongs in .dev/lambda.env (tools/watch.sh)");
    }
    assert_eq!(vars.get("AWS_REGION").map(String::as_str), Some("us-east-1"));
    vars.insert("JWT_SIGNING_KEY".into(), gatehouse_core::tokens::generate_ed25519_pem().unwrap());
    let settings = Settings::from_map(&vars).unwrap_or_else(|e| panic!("watch settings refused: {e}"));
    assert_eq!(settings.protocol, "http");
}

#[test]
fn samconfig_overrides_only_template_parameters() {
    let t = template();
    let text = read("samconfig.toml");
    let mut seen = 0;
    for block in text.split("parameter_overrides = \"\"\"").skip(1) {
        let body = block.split("\"\"\"").next().unwrap();
        for pair in body.split_whitespace().filter(|w| *w != "\\") {
            let (name, value) = pair.split_once('=').unwrap_or_else(|| panic!("samconfig override {pair}"));
            assert!(t["Parameters"][name].is_mapping(), "samconfig.toml sets {name}, which the template lacks");
            let allowed = t["Parameters"][name]["AllowedValues"].as_sequence();
            if let Some(allowed) = allowed {
                assert!(allowed.iter().any(|a| a.as_str() == Some(value)), "{name}={value} is not allowed");
            }
            seen += 1;
        }
    }
    assert!(seen >= 20, "only {seen} overrides found in samconfig.toml (dev and prod)");
}
