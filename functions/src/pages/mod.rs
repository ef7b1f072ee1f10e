//! The account pages (README "Pages"): server-rendered HTML over the API, for teams without a
//! frontend of their own and for `make dev`. Templates, script and styles are compiled in; every
//! string comes from the message catalogs, in the request's language.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use gatehouse_core::config::Settings;
use gatehouse_core::i18n;
use minijinja::value::{Kwargs, Value};
use minijinja::{Environment, Error, ErrorKind, State};

/// The templates, by name.
const TEMPLATES: [(&str, &str); 9] = [
    ("base.html", include_str!("base.html")),
    ("card.html", include_str!("card.html")),
    ("new_password.html", include_str!("new_password.html")),
    ("app.html", include_str!("app.html")),
    ("register.html", include_str!("register.html")),
    ("reset.html", include_str!("reset.html")),
    ("activate.html", include_str!("activate.html")),
    ("reset_confirm.html", include_str!("reset_confirm.html")),
    ("email_confirm.html", include_str!("email_confirm.html")),
];

/// The script and the stylesheet, served under `/pages/`.
pub const SCRIPT: &str = include_str!("app.js");
pub const STYLES: &str = include_str!("app.css");

/// A page: its template and what the script should show first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Login,
    Account,
    Register,
    Reset,
    Activate,
    ResetConfirm,
    EmailConfirm,
}

impl Page {
    /// The name the template and the script know it by.
    pub fn name(self) -> &'static str {
        match self {
            Page::Login => "login",
            Page::Account => "account",
            Page::Register => "register",
            Page::Reset => "reset",
            Page::Activate => "activate",
            Page::ResetConfirm => "reset_confirm",
            Page::EmailConfirm => "email_confirm",
        }
    }

    fn template(self) -> &'static str {
        match self {
            Page::Login | Page::Account => "app.html",
            Page::Register => "register.html",
            Page::Reset => "reset.html",
            Page::Activate => "activate.html",
            Page::ResetConfirm => "reset_confirm.html",
            Page::EmailConfirm => "email_confirm.html",
        }
    }

    /// Whether the page is reached by an emailed link carrying `uid` and `token`.
    pub fn takes_link(self) -> bool {
        matches!(self, Page::Activate | Page::ResetConfirm | Page::EmailConfirm)
    }
}

/// `t("msgid", name=value, ...)`: the message in the page's language, its `%(name)s` parts
/// filled in. A msgid the catalogs do not know is an error, so a test rendering every page finds
/// it before anyone reads an English string in a French page.
fn translate(state: &State, msgid: &str, kwargs: Kwargs) -> Result<String, Error> {
    let catalogs = i18n::Catalogs::get();
    if !catalogs.knows(msgid) {
        return Err(Error::new(ErrorKind::InvalidOperation, format!("\"{msgid}\" is not in the message catalogs")));
    }
    let lang = state.lookup("lang").and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| i18n::SOURCE.into());
    let text = catalogs.gettext(&lang, msgid);
    let mut missing = None;
    let filled = i18n::format_with(&text, |name| match kwargs.get::<Value>(name) {
        Ok(v) => Some(v.to_string()),
        Err(_) => {
            missing = Some(name.to_owned());
            None
        }
    });
    kwargs.assert_all_used()?;
    filled.ok_or_else(|| {
        Error::new(ErrorKind::InvalidOperation, format!("\"{msgid}\": no value for {}", missing.unwrap_or_default()))
    })
}

fn environment() -> Result<&'static Environment<'static>, String> {
    static ENV: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source).map_err(|e| format!("{name}: {e}"))?;
        }
        env.add_function("t", translate);
        Ok(env)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// The `uid` and `token` of an emailed link.
pub struct Link<'a> {
    pub uid: &'a str,
    pub token: &'a str,
}

/// What a sign-in provider posted back to `/login` (Sign in with Apple answers with
/// `response_mode=form_post`): `code`, `state`, and `user` (the name, on the first sign-in) or
/// `error`. It reaches the page's script in the page config only, never a URL.
pub type Posted = BTreeMap<&'static str, String>;

/// The page's HTML in `lang`.
pub fn render(
    settings: &Settings,
    page: Page,
    lang: &str,
    link: Option<Link<'_>>,
    posted: Option<&Posted>,
) -> Result<String, String> {
    let env = environment()?;
    let template = env.get_template(page.template()).map_err(|e| e.to_string())?;
    // What the script needs to know about the deployment (rendered as JSON into the page).
    // Without the cookie transport (`JWT_COOKIE`) a sign-in lasts as long as the page.
    let mut config: BTreeMap<&str, Value> = BTreeMap::from([
        ("page", Value::from(page.name())),
        ("cookie", Value::from(settings.jwt_cookie)),
        ("passkeys", Value::from(!settings.relying_party().1.is_empty())),
        ("register_retype", Value::from(settings.user_create_password_retype)),
        ("set_password_retype", Value::from(settings.set_password_retype)),
        ("reset_retype", Value::from(settings.password_reset_confirm_retype)),
        ("email_retype", Value::from(settings.set_username_retype)),
        ("login_after_activation", Value::from(settings.login_after_activation)),
        ("activation_email", Value::from(settings.send_activation_email)),
        ("email_change_verification", Value::from(settings.email_change_verification)),
        ("password_min_length", Value::from(settings.password_min_length)),
        // The sign-in providers' buttons, in the order of the settings (by name).
        (
            "providers",
            Value::from(
                settings
                    .social
                    .providers
                    .iter()
                    .map(|p| Value::from_pairs([("name", p.name.as_str()), ("label", p.label.as_str())]))
                    .collect::<Vec<_>>(),
            ),
        ),
    ]);
    if let Some(posted) = posted.filter(|p| !p.is_empty()) {
        config.insert("callback", Value::from_pairs(posted.iter().map(|(k, v)| (*k, v.as_str()))));
    }
    let (uid, token) = link.map(|l| (l.uid, l.token)).unwrap_or_default();
    template
        .render(minijinja::context! {
            page => page.name(),
            lang => lang,
            site_name => settings.site_name.as_str(),
            logo_url => settings.brand_logo_url.as_deref(),
            uid => uid,
            token => token,
            config => Value::from(config),
        })
        .map_err(|e| format!("{}: {e:#}", page.template()))
}

/// The stylesheet of the deployment's accent colour, with a text colour that reads on it
/// (WCAG contrast: white or near-black, whichever is further from the accent).
pub fn theme(accent: &str) -> String {
    let channel = |i: usize| {
        let v = f64::from(u8::from_str_radix(accent.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0)) / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
    // Contrast with white (1.05 / (L + 0.05)) against contrast with #111 (L ~ 0.0056).
    let on = if 1.05 / (luminance + 0.05) >= (luminance + 0.05) / 0.0556 { "#ffffff" } else { "#111111" };
    format!(":root {{ --accent: {accent}; --on-accent: {on}; }}\n")
}

/// The Content-Security-Policy of every page: nothing inline, nothing from another origin but
/// the logo's.
pub fn content_security_policy(settings: &Settings) -> String {
    let logo = settings
        .brand_logo_url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .map(|u| format!(" {}", u.origin().ascii_serialization()))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:{logo}; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}
