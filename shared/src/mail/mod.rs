//! Emails: our own templates (text + HTML), a team's overrides of them (`EMAIL_TEMPLATES_DIR`,
//! see `overrides`), the SES v2 mailer and the capture mailer.

#[cfg(feature = "dev")]
pub mod capture;
#[cfg(feature = "test-util")]
pub mod faulty;
pub mod overrides;
pub mod ses;

use crate::config::{CodeFormat, Settings};
use crate::domain::User;
use crate::i18n;
use crate::ports::{EmailKind, OutgoingEmail};

#[cfg(feature = "dev")]
pub use capture::CaptureMailer;
#[cfg(feature = "test-util")]
pub use faulty::{FaultyMailer, MailFault, MailFaults};
pub use overrides::EmailTemplates;
pub use ses::SesMailer;

struct Template {
    subject: &'static str,
    text: &'static str,
    html: &'static str,
}

fn template(kind: EmailKind) -> Template {
    match kind {
        EmailKind::Activation => Template {
            subject: "[[Activate your {site_name} account]]",
            text: include_str!("templates/activation.txt"),
            html: include_str!("templates/activation.html"),
        },
        EmailKind::Confirmation => Template {
            subject: "[[Your {site_name} account is active]]",
            text: include_str!("templates/confirmation.txt"),
            html: include_str!("templates/confirmation.html"),
        },
        EmailKind::PasswordReset => Template {
            subject: "[[Reset your {site_name} password]]",
            text: include_str!("templates/password_reset.txt"),
            html: include_str!("templates/password_reset.html"),
        },
        EmailKind::PasswordChanged => Template {
            subject: "[[Your {site_name} password was changed]]",
            text: include_str!("templates/password_changed.txt"),
            html: include_str!("templates/password_changed.html"),
        },
        EmailKind::EmailChange => Template {
            subject: "[[Confirm your new {site_name} email address]]",
            text: include_str!("templates/email_change.txt"),
            html: include_str!("templates/email_change.html"),
        },
        EmailKind::SessionReuse => Template {
            subject: "[[A {site_name} sign-in was ended for your safety]]",
            text: include_str!("templates/session_reuse.txt"),
            html: include_str!("templates/session_reuse.html"),
        },
        EmailKind::EmailChanged => Template {
            subject: "[[Your {site_name} email address is being changed]]",
            text: include_str!("templates/email_changed.txt"),
            html: include_str!("templates/email_changed.html"),
        },
        EmailKind::ProfileUpdated => Template {
            subject: "[[Your {site_name} profile was changed]]",
            text: include_str!("templates/profile_updated.txt"),
            html: include_str!("templates/profile_updated.html"),
        },
        EmailKind::MfaEnabled => Template {
            subject: "[[Two-step sign-in is on for your {site_name} account]]",
            text: include_str!("templates/mfa_enabled.txt"),
            html: include_str!("templates/mfa_enabled.html"),
        },
        EmailKind::MfaDisabled => Template {
            subject: "[[Two-step sign-in is off for your {site_name} account]]",
            text: include_str!("templates/mfa_disabled.txt"),
            html: include_str!("templates/mfa_disabled.html"),
        },
        EmailKind::RecoveryCodesReplaced => Template {
            subject: "[[New recovery codes were made for your {site_name} account]]",
            text: include_str!("templates/recovery_codes_replaced.txt"),
            html: include_str!("templates/recovery_codes_replaced.html"),
        },
        EmailKind::PasskeyAdded => Template {
            subject: "[[A passkey was added to your {site_name} account]]",
            text: include_str!("templates/passkey_added.txt"),
            html: include_str!("templates/passkey_added.html"),
        },
        EmailKind::PasskeyRemoved => Template {
            subject: "[[A passkey was removed from your {site_name} account]]",
            text: include_str!("templates/passkey_removed.txt"),
            html: include_str!("templates/passkey_removed.html"),
        },
        EmailKind::IdentityLinked => Template {
            subject: "[[{provider_name} sign-in was linked to your {site_name} account]]",
            text: include_str!("templates/identity_linked.txt"),
            html: include_str!("templates/identity_linked.html"),
        },
        EmailKind::IdentityUnlinked => Template {
            subject: "[[{provider_name} sign-in was removed from your {site_name} account]]",
            text: include_str!("templates/identity_unlinked.txt"),
            html: include_str!("templates/identity_unlinked.html"),
        },
    }
}

/// The link of an emailed action: `{protocol}://{domain}/{url}` with `uid` and `token` filled in.
pub fn action_link(settings: &Settings, url_pattern: &str, uid: &str, token: &str) -> String {
    let url = url_pattern.replace("{uid}", uid).replace("{token}", token);
    format!("{}://{}/{}", settings.protocol, settings.link_domain(), url.trim_start_matches('/'))
}

/// What an email is about, beyond its kind and its user.
#[derive(Clone, Debug, Default)]
pub struct Extras {
    /// The action link.
    pub link: Option<String>,
    /// The code to type, when codes are numeric.
    pub code: Option<String>,
    /// The other address of an email change (shown in the notices).
    pub other_address: Option<String>,
    /// The names of the fields a profile update changed, comma-separated (never their values).
    pub changed_fields: Option<String>,
    /// The name of the passkey added or removed, as its owner named it (shown in the notices).
    pub passkey_name: Option<String>,
    /// The sign-in provider linked or unlinked (its label: "Google", "GitHub" ...).
    pub provider_name: Option<String>,
}

/// The language of `user`'s emails: the one stored on the account, else `LANGUAGE_CODE`.
pub fn language<'a>(settings: &'a Settings, user: &User) -> &'a str {
    user.language.as_deref().and_then(|l| i18n::known(l)).unwrap_or(settings.language_code)
}

/// A built-in template in `lang`: each `[[text]]` is a message of the catalog (its msgid is the
/// text with its whitespace runs made single spaces and `{name}` written `%(name)s`), replaced by
/// its translation, or by the text itself in English or when the language lacks it. Values are
/// filled in afterwards, by [`fill`]: a translation never sees them.
fn localize(template: &str, lang: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some((before, after)) = rest.split_once("[[") {
        out.push_str(before);
        let Some((text, tail)) = after.split_once("]]") else {
            out.push_str("[[");
            rest = after;
            continue;
        };
        if lang == i18n::SOURCE {
            out.push_str(text);
        } else {
            let msgid = braces_to_python(&text.split_whitespace().collect::<Vec<_>>().join(" "));
            match i18n::Catalogs::get().gettext(lang, &msgid) {
                std::borrow::Cow::Owned(t) => out.push_str(python_to_braces(&t).as_deref().unwrap_or(text)),
                std::borrow::Cow::Borrowed(_) => out.push_str(text),
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// `{name}` -> `%(name)s` (the catalog's placeholder form).
fn braces_to_python(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some((before, after)) = rest.split_once('{') {
        out.push_str(before);
        match after.split_once('}') {
            Some((name, tail)) if !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => {
                out.push_str(&format!("%({name})s"));
                rest = tail;
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// `%(name)s` -> `{name}` (back to the built-in templates' placeholders); `None` for a malformed
/// translation (which the catalogs' loading already refuses).
fn python_to_braces(text: &str) -> Option<String> {
    i18n::format_with(text, |name| Some(format!("{{{name}}}")))
}

/// Renders an email of `kind` to `user`'s address, in the user's language.
pub fn render(settings: &Settings, kind: EmailKind, user: &User, extras: Extras) -> OutgoingEmail {
    let t = template(kind);
    let lang = language(settings, user);
    let name = if user.first_name.is_empty() { user.email.to_string() } else { user.first_name.clone() };
    let code_line = match extras.code.as_deref() {
        Some(c) => fill(&localize("[[Or type this code: {code}]]", lang), &[("code", c)], false),
        None => String::new(),
    };
    let domain = settings.link_domain();
    let vars: [(&str, &str); 11] = [
        ("site_name", &settings.site_name),
        ("protocol", &settings.protocol),
        ("domain", &domain),
        ("name", &name),
        ("link", extras.link.as_deref().unwrap_or("")),
        ("code_line", &code_line),
        ("email", user.email.as_str()),
        ("other_address", extras.other_address.as_deref().unwrap_or("")),
        ("changed_fields", extras.changed_fields.as_deref().unwrap_or("")),
        ("passkey_name", extras.passkey_name.as_deref().unwrap_or("")),
        ("provider_name", extras.provider_name.as_deref().unwrap_or("")),
    ];
    // The team's own template for this kind, part by part; a part it leaves out is the built-in one.
    let own = if settings.email_templates.is_empty() {
        overrides::Rendered::default()
    } else {
        let numeric = settings.code_format == CodeFormat::Numeric;
        settings.email_templates.render(kind, lang, &facts(settings, kind, user, &extras), numeric)
    };
    // Subjects are single-line: nothing that reaches one may inject a header.
    let subject: String = own.subject.unwrap_or_else(|| {
        fill(&localize(t.subject, lang), &vars, false).chars().filter(|c| !c.is_control()).collect()
    });
    OutgoingEmail {
        kind,
        to: user.email.to_string(),
        subject,
        text: own.text.unwrap_or_else(|| fill(&localize(t.text, lang), &vars, false)),
        html: own.html.unwrap_or_else(|| fill(&localize(t.html, lang), &vars, true)),
        link: extras.link.clone(),
    }
}

/// What a team's template is told: djoser's context (`url` is the link's path part, `uid` and
/// `token` are read back out of it by the kind's URL setting) and Gatehouse's extras.
fn facts(settings: &Settings, kind: EmailKind, user: &User, extras: &Extras) -> overrides::Facts {
    let link = extras.link.clone().unwrap_or_default();
    let domain = settings.link_domain();
    let base = format!("{}://{}/", settings.protocol, domain);
    let url = link.strip_prefix(&base).unwrap_or(&link).to_owned();
    let pattern = match kind {
        EmailKind::Activation => Some(&settings.activation_url),
        EmailKind::PasswordReset => Some(&settings.password_reset_confirm_url),
        EmailKind::EmailChange => Some(&settings.email_change_confirm_url),
        _ => None,
    };
    let (uid, token) = pattern.and_then(|p| overrides::uid_and_token(p, &url)).unwrap_or_default();
    overrides::Facts {
        site_name: settings.site_name.clone(),
        protocol: settings.protocol.clone(),
        domain,
        email: user.email.to_string(),
        first_name: user.first_name.clone(),
        last_name: user.last_name.clone(),
        username: user.username.as_ref().map(|u| u.as_str().to_owned()).unwrap_or_default(),
        link,
        url,
        uid,
        token,
        code: extras.code.clone().unwrap_or_default(),
        other_address: extras.other_address.clone().unwrap_or_default(),
        changed_fields: extras.changed_fields.clone().unwrap_or_default(),
        passkey_name: extras.passkey_name.clone().unwrap_or_default(),
        provider_name: extras.provider_name.clone().unwrap_or_default(),
    }
}

/// Every kind of email, in a fixed order.
pub const KINDS: [EmailKind; 15] = [
    EmailKind::Activation,
    EmailKind::Confirmation,
    EmailKind::PasswordReset,
    EmailKind::PasswordChanged,
    EmailKind::EmailChange,
    EmailKind::EmailChanged,
    EmailKind::SessionReuse,
    EmailKind::ProfileUpdated,
    EmailKind::MfaEnabled,
    EmailKind::MfaDisabled,
    EmailKind::RecoveryCodesReplaced,
    EmailKind::PasskeyAdded,
    EmailKind::PasskeyRemoved,
    EmailKind::IdentityLinked,
    EmailKind::IdentityUnlinked,
];

/// `kind` rendered for a sample user with sample extras, as it would be sent (the dev server's
/// preview: a team checks its templates without sending anything).
pub fn preview(settings: &Settings, kind: EmailKind) -> OutgoingEmail {
    preview_in(settings, kind, None)
}

/// [`preview`] for a sample user whose language is `language` (`None`: `LANGUAGE_CODE`).
pub fn preview_in(settings: &Settings, kind: EmailKind, language: Option<&str>) -> OutgoingEmail {
    let user = User {
        id: crate::domain::UserId::generate(),
        email: match crate::domain::Email::parse("ada@example.com") {
            Ok(email) => email,
            Err(_) => return fallback_preview(kind),
        },
        username: crate::domain::Username::parse("ada").ok(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        password_hash: String::new(),
        is_active: true,
        is_staff: false,
        is_superuser: false,
        groups: vec![],
        group_ids: Default::default(),
        date_joined: 0,
        last_login: None,
        tokens_valid_after: 0,
        version: 1,
        expires_at: None,
        deactivated_at: None,
        user_permissions: Default::default(),
        mfa_enabled: false,
        language: language.map(str::to_owned),
    };
    let uid = crate::secrets::encode_uid(&user.id);
    let numeric = settings.code_format == CodeFormat::Numeric;
    let token = if numeric { "123456" } else { "sample-token" };
    let pattern = match kind {
        EmailKind::Activation => Some(&settings.activation_url),
        EmailKind::PasswordReset => Some(&settings.password_reset_confirm_url),
        EmailKind::EmailChange => Some(&settings.email_change_confirm_url),
        _ => None,
    };
    let extras = Extras {
        link: pattern.map(|p| action_link(settings, p, &uid, token)),
        code: (numeric && matches!(kind, EmailKind::Activation | EmailKind::PasswordReset)).then(|| token.to_owned()),
        other_address: matches!(kind, EmailKind::EmailChange | EmailKind::EmailChanged)
            .then(|| "ada.new@example.com".to_owned()),
        changed_fields: (kind == EmailKind::ProfileUpdated).then(|| "first_name, last_name".to_owned()),
        passkey_name: matches!(kind, EmailKind::PasskeyAdded | EmailKind::PasskeyRemoved)
            .then(|| "Ada's iPhone".to_owned()),
        provider_name: matches!(kind, EmailKind::IdentityLinked | EmailKind::IdentityUnlinked)
            .then(|| "Google".to_owned()),
    };
    render(settings, kind, &user, extras)
}

fn fallback_preview(kind: EmailKind) -> OutgoingEmail {
    OutgoingEmail {
        kind,
        to: String::new(),
        subject: String::new(),
        text: String::new(),
        html: String::new(),
        link: None,
    }
}

/// `template` with every `{key}` of `vars` replaced by its value (HTML-escaped when `escape`), in
/// a single pass over the template: a value is copied, never searched for placeholders, so a name
/// such as `{link}` is shown as typed and cannot pull another value (or a link) into the email.
/// Braces that do not form a known placeholder are kept as they are.
fn fill(template: &str, vars: &[(&str, &str)], escape: bool) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some((before, after)) = rest.split_once('{') {
        out.push_str(before);
        let placeholder = after
            .split_once('}')
            .and_then(|(key, tail)| vars.iter().find(|(k, _)| *k == key).map(|(_, value)| (*value, tail)));
        match placeholder {
            Some((value, tail)) => {
                if escape {
                    out.push_str(&html_escape(value));
                } else {
                    out.push_str(value);
                }
                rest = tail;
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#x27;")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::domain::UserId;

    const KINDS: [EmailKind; 15] = [
        EmailKind::Activation,
        EmailKind::Confirmation,
        EmailKind::PasswordReset,
        EmailKind::PasswordChanged,
        EmailKind::EmailChange,
        EmailKind::EmailChanged,
        EmailKind::SessionReuse,
        EmailKind::ProfileUpdated,
        EmailKind::MfaEnabled,
        EmailKind::MfaDisabled,
        EmailKind::RecoveryCodesReplaced,
        EmailKind::PasskeyAdded,
        EmailKind::PasskeyRemoved,
        EmailKind::IdentityLinked,
        EmailKind::IdentityUnlinked,
    ];

    const LINK: &str = "https://app.example.com/activate/dWlk/the-token";

    fn settings(extra: &[(&str, &str)]) -> Settings {
        let mut vars: HashMap<String, String> = [
            ("EMAIL_FROM", "no-reply@example.com"),
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SIGNING_KEY", "test-secret-test-secret-test-secret!"),
            ("FRONTEND_DOMAIN", "app.example.com"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        Settings::from_map(&vars).unwrap()
    }

    fn user(first_name: &str) -> User {
        User {
            first_name: first_name.to_owned(),
            last_name: "<i>Lovelace</i>".into(),
            ..User::fixture("ada@example.com")
        }
    }

    fn extras() -> Extras {
        Extras {
            link: Some(LINK.into()),
            code: Some("123456".into()),
            other_address: Some("new@example.com".into()),
            changed_fields: Some("first_name, last_name".into()),
            passkey_name: Some("Ada's iPhone".into()),
            provider_name: Some("Google".into()),
        }
    }

    #[test]
    fn html_escape_escapes_the_five_special_characters() {
        assert_eq!(html_escape(r#"& < > " '"#), "&amp; &lt; &gt; &quot; &#x27;");
        assert_eq!(html_escape("&lt;"), "&amp;lt;", "an entity typed by the user is shown, not decoded");
        assert_eq!(html_escape("Ada Lovelace"), "Ada Lovelace");
    }

    #[test]
    fn markup_and_quotes_in_a_name_are_escaped_in_html_and_kept_in_text() {
        let s = settings(&[]);
        let name = r#"<b>"Ada" & 'co'</b>"#;
        let escaped = "&lt;b&gt;&quot;Ada&quot; &amp; &#x27;co&#x27;&lt;/b&gt;";
        for kind in KINDS {
            let m = render(&s, kind, &user(name), extras());
            assert!(m.html.contains(&format!("Hello {escaped},")), "{kind:?}: {}", m.html);
            assert!(!m.html.contains("<b>") && !m.html.contains("\"Ada\"") && !m.html.contains("'co'"), "{kind:?}");
            assert!(m.text.contains(&format!("Hello {name},")), "{kind:?}: the text part shows the name as typed");
            assert!(!m.text.contains("&lt;") && !m.text.contains("&amp;"), "{kind:?}: text is not HTML");
        }
    }

    #[test]
    fn placeholders_in_a_name_are_shown_literally_never_expanded() {
        let s = settings(&[]);
        let name = "{link} {code_line} {email} {other_address} {changed_fields} {passkey_name} {provider_name} {site_name} {name}";
        for kind in KINDS {
            let t = template(kind);
            let m = render(&s, kind, &user(name), extras());
            assert!(m.text.contains(&format!("Hello {name},")), "{kind:?}: {}", m.text);
            assert!(m.html.contains(&format!("Hello {name},")), "{kind:?}: {}", m.html);
            // The link appears only where the template puts it, not where the name is.
            assert_eq!(m.text.matches(LINK).count(), t.text.matches("{link}").count(), "{kind:?}: {}", m.text);
            assert_eq!(m.html.matches(LINK).count(), t.html.matches("{link}").count(), "{kind:?}: {}", m.html);
            let code_lines = t.text.matches("{code_line}").count();
            assert_eq!(m.text.matches("Or type this code: 123456").count(), code_lines, "{kind:?}");
        }
        // A name that is markup *and* a placeholder: escaped, still not expanded.
        let m = render(&s, EmailKind::Activation, &user("<{link}>"), extras());
        assert!(m.html.contains("Hello &lt;{link}&gt;,"), "{}", m.html);
        assert!(m.text.contains("Hello <{link}>,"), "{}", m.text);
    }

    #[test]
    fn subjects_carry_no_control_characters() {
        let s = settings(&[("SITE_NAME", "Gate\r\nBcc: evil@example.net\thouse\u{0}")]);
        let evil = user("Ada\r\nBcc: evil@example.net\r\nSubject: pwned");
        for kind in KINDS {
            let m = render(&s, kind, &evil, extras());
            assert!(!m.subject.chars().any(char::is_control), "{kind:?}: {:?}", m.subject);
            assert!(!m.subject.contains("pwned"), "{kind:?}: names never reach a subject");
        }
    }

    /// The substitution as it was done before (one pass per variable): for values without braces
    /// it is the reference the single pass must match, byte for byte.
    fn fill_per_variable(s: &str, vars: &[(&str, &str)], escape: bool) -> String {
        vars.iter().fold(s.to_owned(), |acc, (k, v)| {
            acc.replace(&format!("{{{k}}}"), &if escape { html_escape(v) } else { (*v).to_owned() })
        })
    }

    #[test]
    fn ordinary_values_render_exactly_as_a_per_variable_substitution_does() {
        let s = settings(&[]);
        let vars = [
            ("site_name", "Gatehouse"),
            ("protocol", "https"),
            ("domain", "app.example.com"),
            ("name", "Ada & <co>"),
            ("link", LINK),
            ("code_line", "Or type this code: 123456"),
            ("email", "ada@example.com"),
            ("other_address", "new@example.com"),
            ("changed_fields", "first_name, last_name"),
            ("passkey_name", "Ada's iPhone"),
            ("provider_name", "Google"),
        ];
        for kind in KINDS {
            let t = template(kind);
            for (text, escape) in [(t.subject, false), (t.text, false), (t.html, true)] {
                assert_eq!(fill(text, &vars, escape), fill_per_variable(text, &vars, escape), "{kind:?}");
            }
            let m = render(&s, kind, &user("Ada & <co>"), extras());
            let english = |t: &str| localize(t, i18n::SOURCE);
            assert_eq!(m.html, fill_per_variable(&english(t.html), &vars, true), "{kind:?}");
            assert_eq!(m.text, fill_per_variable(&english(t.text), &vars, false), "{kind:?}");
        }
        assert_eq!(fill("{{name}} {nope} {name", &vars, false), "{Ada & <co>} {nope} {name");
    }

    #[test]
    fn every_marked_text_of_the_builtin_templates_is_a_catalog_message() {
        let pot = i18n::po::parse(i18n::TEMPLATE).unwrap();
        for kind in KINDS {
            let t = template(kind);
            for part in [t.subject, t.text, t.html, "[[Or type this code: {code}]]"] {
                let mut rest = part;
                let mut marked = 0;
                while let Some((_, after)) = rest.split_once("[[") {
                    let (text, tail) = after.split_once("]]").unwrap();
                    let msgid = braces_to_python(&text.split_whitespace().collect::<Vec<_>>().join(" "));
                    assert!(
                        pot.entries.iter().any(|e| e.msgid == msgid),
                        "{kind:?}: {msgid:?} is not in gatehouse.pot"
                    );
                    marked += 1;
                    rest = tail;
                }
                assert!(marked > 0, "{kind:?}: nothing to translate in {part:?}");
            }
        }
        // English keeps the text (and its line breaks) as written; markers never show.
        assert_eq!(localize("[[a\nb {x}]] [[c]]", "en"), "a\nb {x} c");
        assert_eq!(braces_to_python("{site_name} {a b} {} %"), "%(site_name)s {a b} {} %");
        assert_eq!(python_to_braces("%(site_name)s : 50%%").as_deref(), Some("{site_name} : 50%"));
    }

    #[test]
    fn an_override_replaces_only_the_blocks_it_defines() {
        let dir = std::env::temp_dir().join(format!("gatehouse-mail-{}", UserId::generate()));
        std::fs::create_dir_all(dir.join("email")).unwrap();
        let subject_only =
            "{% load i18n %}{% block subject %}\n  {% trans 'Reset' %} {{ user.first_name }}\n{% endblock %}";
        std::fs::write(dir.join("email/password_reset.html"), subject_only).unwrap();
        let s = settings(&[("EMAIL_TEMPLATES_DIR", dir.to_str().unwrap())]);
        let built_in = render(&settings(&[]), EmailKind::PasswordReset, &user("Ada"), extras());
        let m = render(&s, EmailKind::PasswordReset, &user("Ada\nBcc: x@example.net"), extras());
        assert_eq!(m.subject, "Reset Ada Bcc: x@example.net");
        assert_eq!(m.text, built_in.text.replace("Hello Ada,", "Hello Ada\nBcc: x@example.net,"));
        assert_eq!(m.html, built_in.html.replace("Hello Ada,", "Hello Ada\nBcc: x@example.net,"), "built-in HTML");
        assert_eq!(m.link, built_in.link);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_preview_renders_every_kind_with_sample_data() {
        let s = settings(&[]);
        for kind in KINDS {
            let m = preview(&s, kind);
            assert_eq!(m.kind, kind);
            assert!(!m.subject.is_empty() && !m.text.is_empty() && !m.html.is_empty(), "{kind:?}");
        }
        assert!(preview(&s, EmailKind::Activation)
            .link
            .is_some_and(|l| l.starts_with("https://app.example.com/activate/")));
    }

    #[test]
    fn the_profile_notice_names_the_changed_fields_escaped_in_html() {
        let s = settings(&[]);
        let changed = Extras { changed_fields: Some("first_name, <b>is_staff</b>".into()), ..Extras::default() };
        let m = render(&s, EmailKind::ProfileUpdated, &user("Ada"), changed);
        assert_eq!(m.kind, EmailKind::ProfileUpdated);
        assert_eq!(m.to, "ada@example.com");
        assert_eq!(m.subject, "Your Gatehouse profile was changed");
        assert!(m.text.contains("was just changed: first_name, <b>is_staff</b>."), "{}", m.text);
        assert!(m.html.contains("was just changed: first_name, &lt;b&gt;is_staff&lt;/b&gt;."), "{}", m.html);
        assert!(!m.html.contains("<b>"), "{}", m.html);
        assert_eq!(m.link, None, "a notice carries no action link");
    }

    #[test]
    fn the_second_factor_notices_come_in_english_and_in_french() {
        let s = settings(&[]);
        let cases = [
            (
                EmailKind::MfaEnabled,
                "Two-step sign-in is on for your Gatehouse account",
                "La connexion en deux étapes est activée sur votre compte Gatehouse",
            ),
            (
                EmailKind::MfaDisabled,
                "Two-step sign-in is off for your Gatehouse account",
                "La connexion en deux étapes est désactivée sur votre compte Gatehouse",
            ),
            (
                EmailKind::RecoveryCodesReplaced,
                "New recovery codes were made for your Gatehouse account",
                "De nouveaux codes de récupération ont été créés pour votre compte Gatehouse",
            ),
        ];
        let home = r#"<a href="https://app.example.com/">app.example.com</a>"#;
        for (kind, english, french) in cases {
            let m = render(&s, kind, &user("Ada"), Extras::default());
            assert_eq!((m.kind, m.to.as_str(), m.subject.as_str()), (kind, "ada@example.com", english));
            assert_eq!(m.link, None, "{kind:?}: a notice carries no action link");
            assert!(m.text.starts_with("Hello Ada,") && m.text.contains("(ada@example.com)"), "{kind:?}: {}", m.text);
            assert!(m.text.contains("https://app.example.com/") && m.html.contains(home), "{kind:?}: {}", m.html);
            let fr = User { language: Some("fr".into()), ..user("Ada") };
            let m = render(&s, kind, &fr, Extras::default());
            assert_eq!(m.subject, french);
            assert!(m.text.starts_with("Bonjour Ada,") && m.html.contains(home), "{kind:?}: {}", m.html);
            for part in [&m.text, &m.html] {
                assert!(!part.contains("[[") && !part.contains("If this") && !part.contains("two-step"), "{part}");
            }
        }
    }

    #[test]
    fn the_passkey_notices_name_the_passkey_in_english_and_in_french_escaped_in_html() {
        let s = settings(&[]);
        let cases = [
            (
                EmailKind::PasskeyAdded,
                "A passkey was added to your Gatehouse account",
                "Une clé d’accès a été ajoutée à votre compte Gatehouse",
            ),
            (
                EmailKind::PasskeyRemoved,
                "A passkey was removed from your Gatehouse account",
                "Une clé d’accès a été supprimée de votre compte Gatehouse",
            ),
        ];
        let passkey = "Ada's <b>iPhone</b>";
        let escaped = "Ada&#x27;s &lt;b&gt;iPhone&lt;/b&gt;";
        let named = || Extras { passkey_name: Some(passkey.into()), ..Extras::default() };
        let home = r#"<a href="https://app.example.com/">app.example.com</a>"#;
        for (kind, english, french) in cases {
            let m = render(&s, kind, &user("Ada"), named());
            assert_eq!((m.kind, m.to.as_str(), m.subject.as_str()), (kind, "ada@example.com", english));
            assert_eq!(m.link, None, "{kind:?}: a notice carries no action link");
            assert!(m.text.starts_with("Hello Ada,") && m.text.contains("(ada@example.com)"), "{kind:?}: {}", m.text);
            assert!(m.text.contains(&format!("A passkey named “{passkey}” was")), "{kind:?}: {}", m.text);
            assert!(m.html.contains(&format!("A passkey named “{escaped}” was")), "{kind:?}: {}", m.html);
            assert!(!m.html.contains("<b>") && !m.text.contains("&lt;"), "{kind:?}: {}", m.html);
            assert!(m.text.contains("https://app.example.com/") && m.html.contains(home), "{kind:?}: {}", m.html);
            let fr = User { language: Some("fr".into()), ..user("Ada") };
            let m = render(&s, kind, &fr, named());
            assert_eq!(m.subject, french);
            assert!(m.text.starts_with("Bonjour Ada,") && m.html.contains(home), "{kind:?}: {}", m.html);
            assert!(m.text.contains(&format!("Une clé d’accès nommée « {passkey} » a été")), "{kind:?}: {}", m.text);
            assert!(m.html.contains(&format!("Une clé d’accès nommée « {escaped} » a été")), "{kind:?}: {}", m.html);
            assert!(!m.html.contains("<b>"), "{kind:?}: {}", m.html);
            for part in [&m.text, &m.html] {
                assert!(!part.contains("[[") && !part.contains("If this") && !part.contains("passkey"), "{part}");
            }
        }
    }

    #[test]
    fn an_override_of_a_passkey_notice_is_told_the_passkey_name_escaped_in_html_only() {
        let dir = std::env::temp_dir().join(format!("gatehouse-mail-{}", UserId::generate()));
        std::fs::create_dir_all(dir.join("email")).unwrap();
        let file = "{% block subject %}{{ passkey_name }} added{% endblock %}\n\
                    {% block text_body %}Added: {{ passkey_name }}{% endblock %}\n\
                    {% block html_body %}<p>Added: {{ passkey_name }}</p>{% endblock %}";
        std::fs::write(dir.join("email/passkey_added.html"), file).unwrap();
        // `passkey_name` is in the passkey notices' context only: elsewhere the start is refused.
        std::fs::write(dir.join("email/passkey_removed.html"), "{% block subject %}{{ passkey_name }}{% endblock %}")
            .unwrap();
        std::fs::write(dir.join("email/mfa_enabled.html"), "{% block subject %}{{ passkey_name }}{% endblock %}")
            .unwrap();
        let refused = EmailTemplates::load(&dir, false).unwrap_err();
        assert!(refused.starts_with("email/mfa_enabled.html line 1: `passkey_name`"), "{refused}");
        std::fs::remove_file(dir.join("email/mfa_enabled.html")).unwrap();
        let s = settings(&[("EMAIL_TEMPLATES_DIR", dir.to_str().unwrap())]);
        let named = Extras { passkey_name: Some("Ada's <b>iPhone</b>".into()), ..Extras::default() };
        let m = render(&s, EmailKind::PasskeyAdded, &user("Ada"), named.clone());
        assert_eq!(m.subject, "Ada's <b>iPhone</b> added");
        assert_eq!(m.text, "Added: Ada's <b>iPhone</b>");
        assert_eq!(m.html, "<p>Added: Ada&#x27;s &lt;b&gt;iPhone&lt;&#x2f;b&gt;</p>", "minijinja escapes / too");
        let m = render(&s, EmailKind::PasskeyRemoved, &user("Ada"), named);
        assert_eq!(m.subject, "Ada's <b>iPhone</b>");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
