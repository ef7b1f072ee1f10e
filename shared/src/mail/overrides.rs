//! A team's own email templates (`EMAIL_TEMPLATES_DIR`), in djoser's layout and Django's syntax.
//!
//! Each file under `email/` holds up to three blocks, `subject`, `text_body` and `html_body`, as
//! django-templated-mail reads them. The Django syntax minijinja lacks (`load`, `trans`,
//! `blocktrans`, `autoescape on|off`, `comment`) is translated by [`django_to_jinja`] before
//! parsing, keeping every line where it was so errors point at the team's own file. Everything is
//! checked once, at cold start: a file that does not parse, uses a variable outside its kind's
//! context, defines none of the three blocks, or is not one of the known names refuses the start.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};

use crate::ports::EmailKind;

/// The file of each kind under `EMAIL_TEMPLATES_DIR`: djoser's four names, then Gatehouse's own.
pub const FILES: [(EmailKind, &str); 15] = [
    (EmailKind::Activation, "email/activation.html"),
    (EmailKind::Confirmation, "email/confirmation.html"),
    (EmailKind::PasswordReset, "email/password_reset.html"),
    (EmailKind::PasswordChanged, "email/password_changed_confirmation.html"),
    (EmailKind::EmailChange, "email/email_change.html"),
    (EmailKind::EmailChanged, "email/email_changed.html"),
    (EmailKind::SessionReuse, "email/session_reuse.html"),
    (EmailKind::ProfileUpdated, "email/profile_updated.html"),
    (EmailKind::MfaEnabled, "email/mfa_enabled.html"),
    (EmailKind::MfaDisabled, "email/mfa_disabled.html"),
    (EmailKind::RecoveryCodesReplaced, "email/recovery_codes_replaced.html"),
    (EmailKind::PasskeyAdded, "email/passkey_added.html"),
    (EmailKind::PasskeyRemoved, "email/passkey_removed.html"),
    (EmailKind::IdentityLinked, "email/identity_linked.html"),
    (EmailKind::IdentityUnlinked, "email/identity_unlinked.html"),
];

/// The blocks a file may define.
pub const BLOCKS: [&str; 3] = ["subject", "text_body", "html_body"];

/// The message catalog hook: `{% trans "..." %}` texts and `{% blocktrans %}` contents go through
/// it once per language, at load. A `blocktrans` text is looked up as Django's `makemessages`
/// writes its msgid (`{{ site_name }}` as `%(site_name)s`), so a team's own Django catalog
/// entries and Gatehouse's (`shared/locale`) both apply; the text stays as written in English, or
/// when the language lacks it.
pub fn trans<'a>(text: &'a str, lang: &str) -> Cow<'a, str> {
    if lang == crate::i18n::SOURCE {
        return Cow::Borrowed(text);
    }
    let Some(msgid) = jinja_vars_to_python(text) else { return Cow::Borrowed(text) };
    match crate::i18n::Catalogs::get().gettext(lang, &msgid) {
        Cow::Owned(t) => python_to_jinja_vars(&t).map_or(Cow::Borrowed(text), Cow::Owned),
        Cow::Borrowed(_) => Cow::Borrowed(text),
    }
}

/// `{{ name }}` -> `%(name)s`, `%` -> `%%`; `None` when a `{{ }}` holds more than a name (Django
/// refuses those inside blocktrans too).
fn jinja_vars_to_python(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((before, after)) = rest.split_once("{{") {
        out.push_str(&before.replace('%', "%%"));
        let (inner, tail) = after.split_once("}}")?;
        let name = inner.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        out.push_str(&format!("%({name})s"));
        rest = tail;
    }
    out.push_str(&rest.replace('%', "%%"));
    Some(out)
}

/// `%(name)s` -> `{{ name }}`, `%%` -> `%`: a translation back into the template's syntax;
/// `None` for a malformed one (which the catalogs' loading already refuses).
fn python_to_jinja_vars(text: &str) -> Option<String> {
    crate::i18n::format_with(text, |name| Some(format!("{{{{ {name} }}}}")))
}

/// Django template syntax that minijinja lacks, rewritten into minijinja's, line for line (every
/// newline of the input stays on its line, so a parse error names the line of the original file):
///
/// - `{% load ... %}` is removed;
/// - `{% trans "text" %}` / `{% translate 'text' %}` (optionally `noop`) becomes the text, through
///   [`trans`];
/// - `{% blocktrans %}...{% endblocktrans %}` (or `blocktranslate`) becomes its content, through
///   [`trans`]; `trimmed` joins its lines with single spaces as Django does; `with a=b c=d`
///   becomes a `{% with a=b, c=d %}` around it;
/// - `{% autoescape on|off %}` becomes `{% autoescape true|false %}`;
/// - `{% comment %}...{% endcomment %}` is dropped (its newlines kept).
///
/// What is not supported (`trans ... as`, `blocktrans count`, `asvar`, `context`) is an error
/// `(line, reason)`. Every other tag is left as it is: minijinja parses it or says why not.
pub fn django_to_jinja(src: &str) -> Result<String, (usize, String)> {
    django_to_jinja_in(src, crate::i18n::SOURCE)
}

/// [`django_to_jinja`] with the texts of `trans` and `blocktrans` in `lang`.
pub fn django_to_jinja_in(src: &str, lang: &str) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    let line_at = |rest: &str| src[..src.len() - rest.len()].matches('\n').count() + 1;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        let tag_src = &rest[start..];
        let line = line_at(tag_src);
        let Some(end) = tag_src.find("%}") else {
            // Unterminated: minijinja says so, with the line.
            out.push_str(tag_src);
            return Ok(out);
        };
        let inner = tag_src[2..end].trim_matches(|c: char| c.is_whitespace() || c == '-' || c == '+');
        let after = &tag_src[end + 2..];
        let (word, args) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
        let args = args.trim();
        match word {
            "load" => {
                out.push_str(&"\n".repeat(inner.matches('\n').count()));
                rest = after;
            }
            "trans" | "translate" => {
                let (text, tail) = string_literal(args).ok_or((line, format!("{{% {word} %}} needs a quoted text")))?;
                if !tail.is_empty() && tail != "noop" {
                    return Err((line, format!("{{% {word} \"...\" {tail} %}} is not supported")));
                }
                out.push_str(&literal(&trans(text, lang)));
                out.push_str(&"\n".repeat(inner.matches('\n').count()));
                rest = after;
            }
            "blocktrans" | "blocktranslate" => {
                let (content, tail) = block_content(after, &format!("end{word}"))
                    .ok_or((line, format!("{{% {word} %}} without {{% end{word} %}}")))?;
                if content.contains("{%") {
                    return Err((line, format!("{{% {word} %}} may hold only text and {{{{ variables }}}}")));
                }
                let mut trimmed = false;
                let mut with = Vec::new();
                let mut words = args.split_whitespace();
                while let Some(option) = words.next() {
                    match option {
                        "trimmed" => trimmed = true,
                        "with" => {
                            for binding in words.by_ref() {
                                if binding == "trimmed" {
                                    trimmed = true;
                                } else if binding.contains('=') {
                                    with.push(binding.to_owned());
                                } else {
                                    return Err((line, format!("{{% {word} with %}} takes name=value pairs")));
                                }
                            }
                        }
                        other => return Err((line, format!("{{% {word} {other} %}} is not supported"))),
                    }
                }
                // Django's msgid of a `trimmed` block is the trimmed text.
                let content = if trimmed { Cow::Owned(trim_lines(content)) } else { Cow::Borrowed(content) };
                let body = trans(&content, lang).into_owned();
                let tag_newlines = "\n".repeat(inner.matches('\n').count());
                if with.is_empty() {
                    out.push_str(&tag_newlines);
                    out.push_str(&body);
                } else {
                    out.push_str(&format!("{{% with {} %}}{tag_newlines}{body}{{% endwith %}}", with.join(", ")));
                }
                rest = tail;
            }
            "autoescape" => {
                let mode = match args {
                    "on" => "true",
                    "off" => "false",
                    other => other,
                };
                out.push_str(&format!("{{% autoescape {mode} %}}"));
                rest = after;
            }
            "comment" => {
                let (content, tail) = block_content(after, "endcomment")
                    .ok_or((line, "{% comment %} without {% endcomment %}".into()))?;
                out.push_str(&"\n".repeat(inner.matches('\n').count() + content.matches('\n').count()));
                rest = tail;
            }
            _ => {
                out.push_str(&tag_src[..end + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// `"text" rest` or `'text' rest` → (text, rest).
fn string_literal(args: &str) -> Option<(&str, &str)> {
    let quote = args.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let body = &args[1..];
    let close = body.find(quote)?;
    Some((&body[..close], body[close + 1..].trim()))
}

/// The content up to the closing tag `{% end %}` (any spacing), and what follows it.
fn block_content<'a>(after: &'a str, end: &str) -> Option<(&'a str, &'a str)> {
    let mut from = 0;
    while let Some(pos) = after[from..].find("{%") {
        let at = from + pos;
        let close = at + after[at..].find("%}")?;
        let inner = after[at + 2..close].trim_matches(|c: char| c.is_whitespace() || c == '-' || c == '+');
        if inner == end {
            return Some((&after[..at], &after[close + 2..]));
        }
        from = close + 2;
    }
    None
}

/// Text shown as written, even when it looks like template syntax.
fn literal(text: &str) -> String {
    if text.contains("{{") || text.contains("{%") || text.contains("{#") {
        format!("{{% raw %}}{text}{{% endraw %}}")
    } else {
        text.to_owned()
    }
}

/// Django's `trimmed`: each line's surrounding whitespace removed, the non-empty lines joined by
/// one space. The newlines stay, inside comments, so the lines after keep their numbers.
fn trim_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut wrote, mut spaced) = (false, false);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            // A line ending in `{` would make `{{#` of the comment: the joining space goes first.
            if out.ends_with('{') {
                out.push(' ');
                spaced = true;
            }
            out.push_str("{#\n#}");
        }
        let line = line.trim();
        if !line.is_empty() {
            if wrote && !spaced {
                out.push(' ');
            }
            out.push_str(line);
            (wrote, spaced) = (true, false);
        }
    }
    out
}

/// The overrides read from `EMAIL_TEMPLATES_DIR` (empty when it is unset).
#[derive(Clone, Default)]
pub struct EmailTemplates {
    loaded: Option<Arc<Loaded>>,
}

struct Loaded {
    env: Environment<'static>,
    /// The kinds with an override, each with the blocks its file defines.
    files: Vec<(EmailKind, &'static str, [bool; 3])>,
}

impl std::fmt::Debug for EmailTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files: Vec<&str> = self.loaded.iter().flat_map(|l| l.files.iter().map(|(_, name, _)| *name)).collect();
        f.debug_struct("EmailTemplates").field("files", &files).finish()
    }
}

/// The parts an override renders; `None` for a part its file leaves to the built-in template.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Rendered {
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

/// The HTML variant of a file is registered under its name plus this suffix: it alone escapes.
const HTML_VARIANT: &str = "#html";

impl EmailTemplates {
    /// Reads and checks every file under `dir/email/`. `numeric_codes`: whether the code-carrying
    /// kinds have a `code` in their context. The error says which file, which line and why.
    pub fn load(dir: &Path, numeric_codes: bool) -> Result<Self, String> {
        let email_dir = dir.join("email");
        let entries = std::fs::read_dir(&email_dir)
            .map_err(|e| format!("{}: {e} (the folder holds email/activation.html ...)", email_dir.display()))?;
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(
            |name| {
                if name.ends_with(HTML_VARIANT) {
                    AutoEscape::Html
                } else {
                    AutoEscape::None
                }
            },
        );
        let mut found = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("{}: {e}", email_dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let rel = format!("email/{name}");
            let Some((kind, file)) = FILES.iter().find(|(_, f)| *f == rel).copied() else {
                let known: Vec<&str> = FILES.iter().map(|(_, f)| *f).collect();
                return Err(format!("{rel}: not a known email template (known: {})", known.join(", ")));
            };
            let raw = std::fs::read_to_string(entry.path()).map_err(|e| format!("{rel}: {e}"))?;
            let source = django_to_jinja(&raw).map_err(|(line, why)| format!("{rel} line {line}: {why}"))?;
            for name in [file.to_owned(), format!("{file}{HTML_VARIANT}")] {
                env.add_template_owned(name, source.clone()).map_err(|e| template_error(file, &e))?;
            }
            // The same file in every other language Gatehouse speaks (its trans texts translated).
            for lang in crate::i18n::languages().iter().skip(1) {
                let source =
                    django_to_jinja_in(&raw, lang).map_err(|(line, why)| format!("{rel} line {line}: {why}"))?;
                for name in [variant(file, lang), format!("{}{HTML_VARIANT}", variant(file, lang))] {
                    env.add_template_owned(name, source.clone()).map_err(|e| template_error(file, &e))?;
                }
            }
            found.push((kind, file));
        }
        let mut files = Vec::new();
        for (kind, file) in found {
            let allowed = context_keys(kind, numeric_codes);
            // Every name the kind may ever have (`code` only with numeric codes: a template serving
            // both asks `{% if code is defined %}`); what is used unguarded, the render below checks.
            let known = context_keys(kind, true);
            let template = env.get_template(file).map_err(|e| template_error(file, &e))?;
            let mut unknown: Vec<String> =
                template.undeclared_variables(false).into_iter().filter(|v| !known.contains(&v.as_str())).collect();
            unknown.sort();
            if let Some(var) = unknown.first() {
                let line = first_line_naming(template.source(), var).map(|l| format!(" line {l}")).unwrap_or_default();
                return Err(format!(
                    "{file}{line}: `{var}` is not in this email's context (it has: {})",
                    allowed.join(", ")
                ));
            }
            let sample = context(kind, &Facts::sample(), numeric_codes);
            let mut present = [false; 3];
            for (i, block) in BLOCKS.iter().enumerate() {
                let name = if *block == "html_body" { format!("{file}{HTML_VARIANT}") } else { file.to_owned() };
                match render_block(&env, &name, block, &sample) {
                    Ok(_) => present[i] = true,
                    Err(e) if e.kind() == ErrorKind::UnknownBlock => {}
                    Err(e) => {
                        let what = if e.kind() == ErrorKind::UndefinedError {
                            format!(
                                "a variable or attribute outside this email's context (it has: {}; user has: email, first_name, last_name, username)",
                                allowed.join(", ")
                            )
                        } else {
                            why(&e)
                        };
                        let line = e.line().map(|l| format!(" line {l}")).unwrap_or_default();
                        return Err(format!("{file}{line}: {what}"));
                    }
                }
            }
            if !present.contains(&true) {
                return Err(format!("{file}: defines none of the blocks {}", BLOCKS.join(", ")));
            }
            for lang in crate::i18n::languages().iter().skip(1) {
                for (block, _) in BLOCKS.iter().zip(present).filter(|(_, p)| *p) {
                    let name = variant(file, lang);
                    let name = if *block == "html_body" { format!("{name}{HTML_VARIANT}") } else { name };
                    render_block(&env, &name, block, &sample)
                        .map_err(|e| format!("{file} in {lang} (its translated texts): {}", why(&e)))?;
                }
            }
            files.push((kind, file, present));
        }
        files.sort_by_key(|(_, file, _)| *file);
        Ok(Self { loaded: Some(Arc::new(Loaded { env, files })) })
    }

    /// Whether no override is loaded.
    pub fn is_empty(&self) -> bool {
        self.loaded.as_ref().is_none_or(|l| l.files.is_empty())
    }

    /// The files loaded, with the blocks each defines.
    pub fn files(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let Some(loaded) = &self.loaded else { return Vec::new() };
        loaded
            .files
            .iter()
            .map(|(_, file, present)| {
                (*file, BLOCKS.iter().zip(present).filter(|(_, p)| **p).map(|(b, _)| *b).collect())
            })
            .collect()
    }

    /// The parts of `kind` its override defines. A part that fails to render (which the check at
    /// load should make impossible) is logged and left to the built-in template.
    pub(crate) fn render(&self, kind: EmailKind, lang: &str, facts: &Facts, numeric_codes: bool) -> Rendered {
        let Some(loaded) = &self.loaded else { return Rendered::default() };
        let Some((_, file, present)) = loaded.files.iter().find(|(k, _, _)| *k == kind) else {
            return Rendered::default();
        };
        let ctx = context(kind, facts, numeric_codes);
        let part = |i: usize, block: &str, template: &str| -> Option<String> {
            if !present[i] {
                return None;
            }
            match render_block(&loaded.env, template, block, &ctx) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::error!(file = *file, block, error = %e, "email template failed; built-in used");
                    None
                }
            }
        };
        let name = if lang == crate::i18n::SOURCE { (*file).to_owned() } else { variant(file, lang) };
        let html_name = format!("{name}{HTML_VARIANT}");
        Rendered {
            subject: part(0, "subject", &name).map(|s| one_line(&s)),
            text: part(1, "text_body", &name).map(|s| s.trim().to_owned()),
            html: part(2, "html_body", &html_name).map(|s| s.trim().to_owned()),
        }
    }
}

/// The name a file's translation into `lang` is registered under.
fn variant(file: &str, lang: &str) -> String {
    format!("{file}@{lang}")
}

fn render_block(env: &Environment<'static>, name: &str, block: &str, ctx: &Value) -> Result<String, minijinja::Error> {
    let template = env.get_template(name)?;
    let mut captured = template.render_captured(ctx.clone())?;
    captured.with_state_mut(|state| state.render_block(block))
}

/// What went wrong, without minijinja's own `(in name:line)`: the caller names the file.
fn why(e: &minijinja::Error) -> String {
    match e.detail() {
        Some(detail) => format!("{}: {detail}", e.kind()),
        None => e.kind().to_string(),
    }
}

fn template_error(file: &str, e: &minijinja::Error) -> String {
    let why = why(e);
    match e.line() {
        Some(line) => format!("{file} line {line}: {why}"),
        None => format!("{file}: {why}"),
    }
}

/// The first line where `var` appears as a word.
fn first_line_naming(source: &str, var: &str) -> Option<usize> {
    source
        .lines()
        .position(|line| {
            line.match_indices(var).any(|(at, _)| {
                let word = |c: char| c.is_alphanumeric() || c == '_';
                let before = line[..at].chars().next_back().is_none_or(|c| !word(c));
                let after = line[at + var.len()..].chars().next().is_none_or(|c| !word(c));
                before && after
            })
        })
        .map(|i| i + 1)
}

/// A subject on one line: whitespace runs (newlines included) become one space, control
/// characters go, the ends are trimmed. Nothing that reaches a subject can add a header.
pub fn one_line(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned()
}

/// What a template can be told about an email, as text.
#[derive(Clone, Debug, Default)]
pub(crate) struct Facts {
    pub site_name: String,
    pub protocol: String,
    pub domain: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub username: String,
    pub link: String,
    pub url: String,
    pub uid: String,
    pub token: String,
    pub code: String,
    pub other_address: String,
    pub changed_fields: String,
    pub passkey_name: String,
    pub provider_name: String,
}

impl Facts {
    fn sample() -> Self {
        Self {
            site_name: "Gatehouse".into(),
            protocol: "https".into(),
            domain: "app.example.com".into(),
            email: "ada@example.com".into(),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            username: "ada".into(),
            link: "https://app.example.com/activate/MQ/token".into(),
            url: "activate/MQ/token".into(),
            uid: "MQ".into(),
            token: "token".into(),
            code: "123456".into(),
            other_address: "new@example.com".into(),
            changed_fields: "first_name".into(),
            passkey_name: "Ada's iPhone".into(),
            provider_name: "Google".into(),
        }
    }
}

/// Whether the kind carries an action link.
fn has_link(kind: EmailKind) -> bool {
    matches!(kind, EmailKind::Activation | EmailKind::PasswordReset | EmailKind::EmailChange)
}

/// The variables of a kind's context: the same names at load and at send.
pub fn context_keys(kind: EmailKind, numeric_codes: bool) -> Vec<&'static str> {
    let mut keys = vec!["user", "domain", "site_name", "protocol"];
    if has_link(kind) {
        keys.extend(["url", "uid", "token", "link"]);
    }
    if numeric_codes && matches!(kind, EmailKind::Activation | EmailKind::PasswordReset) {
        keys.push("code");
    }
    if matches!(kind, EmailKind::EmailChange | EmailKind::EmailChanged) {
        keys.push("other_address");
    }
    if kind == EmailKind::ProfileUpdated {
        keys.push("changed_fields");
    }
    if matches!(kind, EmailKind::PasskeyAdded | EmailKind::PasskeyRemoved) {
        keys.push("passkey_name");
    }
    if matches!(kind, EmailKind::IdentityLinked | EmailKind::IdentityUnlinked) {
        keys.push("provider_name");
    }
    keys
}

fn context(kind: EmailKind, f: &Facts, numeric_codes: bool) -> Value {
    let mut ctx: BTreeMap<String, Value> = BTreeMap::new();
    for key in context_keys(kind, numeric_codes) {
        let value = match key {
            "user" => {
                let user: BTreeMap<String, Value> = [
                    ("email", &f.email),
                    ("first_name", &f.first_name),
                    ("last_name", &f.last_name),
                    ("username", &f.username),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::from(v.as_str())))
                .collect();
                Value::from(user)
            }
            "domain" => Value::from(f.domain.as_str()),
            "site_name" => Value::from(f.site_name.as_str()),
            "protocol" => Value::from(f.protocol.as_str()),
            "url" => Value::from(f.url.as_str()),
            "uid" => Value::from(f.uid.as_str()),
            "token" => Value::from(f.token.as_str()),
            "link" => Value::from(f.link.as_str()),
            "code" => Value::from(f.code.as_str()),
            "other_address" => Value::from(f.other_address.as_str()),
            "changed_fields" => Value::from(f.changed_fields.as_str()),
            "passkey_name" => Value::from(f.passkey_name.as_str()),
            "provider_name" => Value::from(f.provider_name.as_str()),
            _ => continue,
        };
        ctx.insert(key.to_owned(), value);
    }
    Value::from(ctx)
}

/// `url` matched against a pattern holding `{uid}` and `{token}`: the two values.
pub(crate) fn uid_and_token(pattern: &str, url: &str) -> Option<(String, String)> {
    let (mut uid, mut token) = (None, None);
    let mut pattern = pattern.trim_start_matches('/');
    let mut url = url;
    loop {
        let next = [pattern.find("{uid}").map(|i| (i, "{uid}")), pattern.find("{token}").map(|i| (i, "{token}"))]
            .into_iter()
            .flatten()
            .min_by_key(|(i, _)| *i);
        let Some((at, placeholder)) = next else {
            return if pattern == url { uid.zip(token) } else { None };
        };
        url = url.strip_prefix(&pattern[..at])?;
        pattern = &pattern[at + placeholder.len()..];
        let literal_end =
            [pattern.find("{uid}"), pattern.find("{token}")].into_iter().flatten().min().unwrap_or(pattern.len());
        let value_len = if pattern.is_empty() {
            url.len()
        } else if literal_end == 0 {
            return None; // two placeholders side by side: no telling where one ends
        } else {
            url.find(&pattern[..literal_end])?
        };
        let value = url[..value_len].to_owned();
        url = &url[value_len..];
        if placeholder == "{uid}" {
            uid = Some(value);
        } else {
            token = Some(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_tags_become_minijinja_line_for_line() {
        let src = "{% load i18n %}\n{% block subject %}\n{% blocktrans %}Welcome to {{ site_name }}{% endblocktrans %}\n{% endblock subject %}\n{% block text_body %}{% trans \"Hello\" %} {% translate 'there' noop %}\n{% endblock text_body %}";
        let out = django_to_jinja(src).unwrap();
        assert_eq!(
            out,
            "\n{% block subject %}\nWelcome to {{ site_name }}\n{% endblock subject %}\n{% block text_body %}Hello there\n{% endblock text_body %}"
        );
        assert_eq!(out.lines().count(), src.lines().count());
    }

    #[test]
    fn blocktrans_trimmed_and_with() {
        let out = django_to_jinja("{% blocktrans trimmed %}\n  One\n   two {{ x }}\n{% endblocktrans %}!").unwrap();
        assert_eq!(out, "{#\n#}One{#\n#} two {{ x }}{#\n#}!");
        let braces = django_to_jinja("{% blocktrans trimmed %}a {\nb{% endblocktrans %}").unwrap();
        assert_eq!(Environment::new().render_str(&braces, ()).unwrap(), "a { b");
        let out =
            django_to_jinja("{% blocktranslate with n=user.first_name s=site_name %}Hi {{ n }}{% endblocktranslate %}")
                .unwrap();
        assert_eq!(out, "{% with n=user.first_name, s=site_name %}Hi {{ n }}{% endwith %}");
        let mut env = Environment::new();
        env.add_template("t", "{% blocktrans trimmed %}\n  One\n   two\n{% endblocktrans %}!").ok();
        let src = django_to_jinja("{% blocktrans trimmed %}\n  One\n   two\n{% endblocktrans %}!").unwrap();
        assert_eq!(env.render_str(&src, ()).unwrap(), "One two!");
    }

    #[test]
    fn other_django_forms() {
        assert_eq!(
            django_to_jinja("{% autoescape off %}x{% endautoescape %}").unwrap(),
            "{% autoescape false %}x{% endautoescape %}"
        );
        assert_eq!(django_to_jinja("a{% comment %}\n{% trans 'x' %}\n{% endcomment %}b").unwrap(), "a\n\nb");
        assert_eq!(django_to_jinja("{% trans \"{{ not a var }}\" %}").unwrap(), "{% raw %}{{ not a var }}{% endraw %}");
        assert_eq!(django_to_jinja("{% if x %}{{ y|safe }}{% endif %}").unwrap(), "{% if x %}{{ y|safe }}{% endif %}");
        assert_eq!(
            django_to_jinja("\n\n{% trans \"x\" as y %}"),
            Err((3, "{% trans \"...\" as y %} is not supported".into()))
        );
        assert_eq!(django_to_jinja("\n{% blocktrans count n=1 %}x{% endblocktrans %}").map_err(|e| e.0), Err(2));
        assert_eq!(django_to_jinja("{% blocktrans %}x").map_err(|e| e.0), Err(1));
        assert_eq!(
            django_to_jinja("{% blocktrans %}{% if a %}{% endif %}{% endblocktrans %}").map_err(|e| e.0),
            Err(1)
        );
        assert_eq!(django_to_jinja("{% trans %}").map_err(|e| e.0), Err(1));
    }

    #[test]
    fn endblock_with_a_name_parses_in_minijinja() {
        let mut env = Environment::new();
        assert!(env.add_template("t", "{% block subject %}x{% endblock subject %}").is_ok());
        assert!(env.add_template("u", "{% block subject %}x{% endblock other %}").is_err());
    }

    #[test]
    fn subjects_collapse_to_one_line() {
        assert_eq!(one_line("\n  Hello\r\nBcc: x@y\t \u{0}there \n"), "Hello Bcc: x@y there");
    }

    #[test]
    fn uid_and_token_come_back_out_of_the_url() {
        let t = |p: &str, u: &str| uid_and_token(p, u);
        assert_eq!(t("activate/{uid}/{token}", "activate/MQ/abc-def"), Some(("MQ".into(), "abc-def".into())));
        assert_eq!(t("/#/reset/{token}/{uid}/", "#/reset/tok/MQ/"), Some(("MQ".into(), "tok".into())));
        assert_eq!(t("a?u={uid}&t={token}", "a?u=MQ&t=123456"), Some(("MQ".into(), "123456".into())));
        assert_eq!(t("activate/{uid}/{token}", "other/MQ/abc"), None);
        assert_eq!(t("x/{uid}{token}", "x/MQabc"), None, "ambiguous: no separator");
    }

    /// A folder holding `email/<name>` files, removed when dropped.
    struct Dir(std::path::PathBuf);

    impl std::ops::Deref for Dir {
        type Target = Path;
        fn deref(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn dir_with(files: &[(&str, &str)]) -> Dir {
        let dir = std::env::temp_dir().join(format!("gatehouse-mail-{}", uuid::Uuid::now_v7()));
        let _ = std::fs::create_dir_all(dir.join("email"));
        for (name, body) in files {
            let _ = std::fs::write(dir.join("email").join(name), body);
        }
        Dir(dir)
    }

    const OK: &str = "{% load i18n %}\n{% block subject %}{% trans \"Hi\" %} {{ site_name }}{% endblock %}\n{% block text_body %}{{ url }} {{ user.first_name }}{% endblock %}\n";

    #[test]
    fn loading_accepts_djoser_files_and_reports_their_blocks() {
        let t = EmailTemplates::load(&dir_with(&[("activation.html", OK), (".DS_Store", "")]), false).unwrap();
        assert_eq!(t.files(), vec![("email/activation.html", vec!["subject", "text_body"])]);
        let r = t.render(EmailKind::Activation, "en", &Facts::sample(), false);
        assert_eq!(r.subject.as_deref(), Some("Hi Gatehouse"));
        assert_eq!(r.text.as_deref(), Some("activate/MQ/token Ada"));
        assert_eq!(r.html, None, "missing block: the built-in part is used");
        assert_eq!(t.render(EmailKind::PasswordReset, "en", &Facts::sample(), false), Rendered::default());
        assert!(EmailTemplates::default().is_empty());
    }

    #[test]
    fn a_parse_error_names_the_file_and_line() {
        let bad = "{% load i18n %}\n{% block subject %}\n{{ site_name \n{% endblock %}";
        let e = EmailTemplates::load(&dir_with(&[("password_reset.html", bad)]), false).err().unwrap_or_default();
        assert!(e.starts_with("email/password_reset.html line "), "{e}");
        assert!(e.contains("syntax error"), "{e}");
        let e = EmailTemplates::load(&dir_with(&[("activation.html", "\n\n{% trans 'x' as y %}")]), false)
            .err()
            .unwrap_or_default();
        assert!(e.starts_with("email/activation.html line 3: "), "{e}");
    }

    #[test]
    fn a_variable_outside_the_context_is_refused() {
        let e = EmailTemplates::load(
            &dir_with(&[("confirmation.html", "{% block subject %}\n{{ url }}{% endblock %}")]),
            false,
        )
        .err()
        .unwrap_or_default();
        assert!(e.starts_with("email/confirmation.html line 2: `url` is not in this email's context"), "{e}");
        let attr = "{% block text_body %}\n\n{{ user.nickname }}{% endblock %}";
        let e = EmailTemplates::load(&dir_with(&[("activation.html", attr)]), false).err().unwrap_or_default();
        assert!(e.starts_with("email/activation.html line 3: a variable or attribute outside"), "{e}");
        let code = "{% block text_body %}{{ code }}{% endblock %}";
        assert!(EmailTemplates::load(&dir_with(&[("activation.html", code)]), false).is_err(), "link codes: no code");
        assert!(EmailTemplates::load(&dir_with(&[("activation.html", code)]), true).is_ok(), "numeric codes");
        let guarded = "{% block text_body %}{% if code is defined %}{{ code }}{% endif %}{% endblock %}";
        assert!(EmailTemplates::load(&dir_with(&[("activation.html", guarded)]), false).is_ok());
    }

    #[test]
    fn a_missing_include_is_refused_at_load() {
        let e = EmailTemplates::load(
            &dir_with(&[("activation.html", "{% block subject %}\n\n{% include 'base.html' %}{% endblock %}")]),
            false,
        )
        .err()
        .unwrap_or_default();
        assert!(e.starts_with("email/activation.html line 3: template not found"), "{e}");
    }

    #[test]
    fn unknown_files_and_files_without_blocks_are_refused() {
        let e = EmailTemplates::load(&dir_with(&[("activaton.html", OK)]), false).err().unwrap_or_default();
        assert!(e.starts_with("email/activaton.html: not a known email template"), "{e}");
        let e = EmailTemplates::load(&dir_with(&[("activation.html", "<p>hi</p>")]), false).err().unwrap_or_default();
        assert!(e.contains("defines none of the blocks"), "{e}");
        let missing = std::env::temp_dir().join("gatehouse-mail-no-such-dir");
        assert!(EmailTemplates::load(&missing, false).is_err());
    }

    /// djoser's own default activation template, as djoser ships it.
    const DJOSER_ACTIVATION: &str = r#"{% load i18n %}

{% block subject %}
{% blocktrans %}Account activation on {{ site_name }}{% endblocktrans %}
{% endblock subject %}

{% block text_body %}
{% blocktrans %}You're receiving this email because you need to finish activation process on {{ site_name }}.{% endblocktrans %}

{% trans "Please go to the following page to activate account:" %}
{{ protocol }}://{{ domain }}/{{ url|safe }}

{% trans "Thanks for using our site!" %}

{% blocktrans %}The {{ site_name }} team{% endblocktrans %}
{% endblock text_body %}

{% block html_body %}
<p>{% blocktrans %}You're receiving this email because you need to finish activation process on {{ site_name }}.{% endblocktrans %}</p>
<p>{% trans "Please go to the following page to activate account:" %}</p>
<p><a href="{{ protocol }}://{{ domain }}/{{ url|safe }}">{{ protocol }}://{{ domain }}/{{ url|safe }}</a></p>
<p>{% trans "Thanks for using our site!" %}</p>
<p>{% blocktrans %}The {{ site_name }} team{% endblocktrans %}</p>
{% endblock html_body %}
"#;

    #[test]
    fn djosers_own_default_template_loads_and_renders_as_django_would() {
        let t = EmailTemplates::load(&dir_with(&[("activation.html", DJOSER_ACTIVATION)]), false).unwrap();
        let r = t.render(EmailKind::Activation, "en", &Facts::sample(), false);
        assert_eq!(r.subject.as_deref(), Some("Account activation on Gatehouse"));
        assert_eq!(
            r.text.as_deref(),
            Some("You're receiving this email because you need to finish activation process on Gatehouse.\n\nPlease go to the following page to activate account:\nhttps://app.example.com/activate/MQ/token\n\nThanks for using our site!\n\nThe Gatehouse team")
        );
        let html = r.html.unwrap_or_default();
        assert!(html.starts_with("<p>You're receiving"), "{html}");
        assert!(
            html.contains(
                r#"<a href="https://app.example.com/activate/MQ/token">https://app.example.com/activate/MQ/token</a>"#
            ),
            "{html}"
        );
        // In French, through the shipped catalog: trans and blocktrans texts (with their
        // variables) translated, everything else as the template has it.
        let fr = t.render(EmailKind::Activation, "fr", &Facts::sample(), false);
        assert_eq!(fr.subject.as_deref(), Some("Activation du compte sur Gatehouse"));
        assert_eq!(
            fr.text.as_deref(),
            Some("Vous recevez cet e-mail car vous devez terminer l’activation de votre compte sur Gatehouse.\n\nRendez-vous sur la page suivante pour activer le compte :\nhttps://app.example.com/activate/MQ/token\n\nMerci d’utiliser notre site !\n\nL’équipe Gatehouse")
        );
    }

    #[test]
    fn blocktrans_texts_are_looked_up_as_makemessages_writes_them() {
        assert_eq!(jinja_vars_to_python("50% off {{ site_name }}!").as_deref(), Some("50%% off %(site_name)s!"));
        assert_eq!(jinja_vars_to_python("{{ user.email }}"), None);
        assert_eq!(python_to_jinja_vars("%(site_name)s : 50%%").as_deref(), Some("{{ site_name }} : 50%"));
        assert_eq!(trans("The {{ site_name }} team", "fr"), "L’équipe {{ site_name }}");
        assert_eq!(trans("The {{ site_name }} team", "en"), "The {{ site_name }} team");
        assert_eq!(trans("Not in any catalog {{ x }}", "fr"), "Not in any catalog {{ x }}");
    }

    #[test]
    fn html_escapes_user_data_and_text_keeps_it() {
        let body = "{% block text_body %}{{ user.first_name }}{% endblock %}{% block html_body %}<p>{{ user.first_name }}</p>{% endblock %}";
        let t = EmailTemplates::load(&dir_with(&[("session_reuse.html", body)]), false).unwrap();
        let facts = Facts { first_name: "<b>Ada</b>".into(), ..Facts::sample() };
        let r = t.render(EmailKind::SessionReuse, "en", &facts, false);
        assert_eq!(r.text.as_deref(), Some("<b>Ada</b>"));
        assert_eq!(r.html.as_deref(), Some("<p>&lt;b&gt;Ada&lt;&#x2f;b&gt;</p>"));
    }
}
