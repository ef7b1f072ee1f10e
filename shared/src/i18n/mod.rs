//! Languages: the messages of error responses and emails in the user's language.
//!
//! The services speak English, as djoser and DRF do. Every message they can produce is a msgid of
//! `shared/locale/gatehouse.pot` (dynamic parts as Python's `%(name)s` / `%(name)d`, the form
//! Django's catalogs use); each other language is a gettext catalog `shared/locale/<lang>.po`,
//! embedded at build time (the build script refuses a broken one, naming its line). The HTTP edge
//! picks a language per request from `Accept-Language` (Django's LocaleMiddleware rules: quality
//! order, then the language without its region, then `LANGUAGE_CODE`) and translates the English
//! messages of the response body; emails use the language stored on the user at registration.
//! See README "Languages".

pub mod plural;
pub mod po;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

/// The language the messages are written in.
pub const SOURCE: &str = "en";

/// The template of every message (`msgid`s, no translations).
pub const TEMPLATE: &str = include_str!("../../locale/gatehouse.pot");

// `EMBEDDED: &[(&str, &str)]`: (language, contents) of every `shared/locale/*.po`.
include!(concat!(env!("OUT_DIR"), "/locales.rs"));

/// One dynamic part of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    /// `%(name)s` (any text) or `%(name)d` (digits).
    Arg {
        name: String,
        digits: bool,
    },
}

/// A msgid with dynamic parts, as a matcher of the English text the services produce.
#[derive(Clone, Debug)]
struct Pattern {
    msgid: String,
    /// The English forms: the msgid, and its `msgid_plural` if any.
    forms: Vec<Vec<Piece>>,
}

/// Splits a Python-format string into text and arguments (`%%` is a `%`).
fn pieces(s: &str) -> Result<Vec<Piece>, String> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = s;
    while let Some(at) = rest.find('%') {
        text.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            text.push('%');
            rest = tail;
            continue;
        }
        let inner = after.strip_prefix('(').and_then(|a| a.split_once(')'));
        let Some((name, tail)) = inner else {
            return Err(format!("{s:?}: a `%` must start %(name)s, %(name)d or %%"));
        };
        let digits = match tail.chars().next() {
            Some('s') => false,
            Some('d') => true,
            _ => return Err(format!("{s:?}: %({name}) must be followed by s or d")),
        };
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut text)));
        }
        if matches!(out.last(), Some(Piece::Arg { .. })) {
            return Err(format!("{s:?}: two arguments must be separated by text"));
        }
        out.push(Piece::Arg { name: name.to_owned(), digits });
        rest = &tail[1..];
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    Ok(out)
}

/// The argument names of a format string, sorted (for comparing a translation with its msgid).
pub fn arg_names(s: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = pieces(s)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Arg { name, .. } => Some(name),
            Piece::Text(_) => None,
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// `text` read as `form`: the arguments, or `None` when it is not that message.
fn matches(form: &[Piece], text: &str) -> Option<Vec<(String, String)>> {
    let mut args = Vec::new();
    let mut rest = text;
    let mut i = 0;
    while i < form.len() {
        match &form[i] {
            Piece::Text(t) => rest = rest.strip_prefix(t.as_str())?,
            Piece::Arg { name, digits } => {
                // The text after the argument: the next piece (pieces never hold two arguments
                // in a row), searched from the end when it is the last one.
                let value = match form.get(i + 1) {
                    Some(Piece::Text(next)) if i + 2 == form.len() => {
                        let v = rest.strip_suffix(next.as_str())?;
                        rest = "";
                        i += 1;
                        v
                    }
                    Some(Piece::Text(next)) => {
                        let at = rest.find(next.as_str())?;
                        let v = &rest[..at];
                        rest = &rest[at + next.len()..];
                        i += 1;
                        v
                    }
                    _ => std::mem::take(&mut rest),
                };
                if value.is_empty() || (*digits && !value.bytes().all(|b| b.is_ascii_digit())) {
                    return None;
                }
                args.push((name.clone(), value.to_owned()));
            }
        }
        i += 1;
    }
    rest.is_empty().then_some(args)
}

/// A Python-format string with each `%(name)s` / `%(name)d` replaced by `arg(name)` and `%%` by
/// `%`: a translation filled in, or written back in a template's own placeholder syntax. `None`
/// when the string is malformed or `arg` has nothing for a name.
pub fn format_with(text: &str, mut arg: impl FnMut(&str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    for piece in pieces(text).ok()? {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Arg { name, .. } => out.push_str(&arg(&name)?),
        }
    }
    Some(out)
}

/// Fills `%(name)s` / `%(name)d` of a translation with the arguments read from the English text.
fn fill(translation: &str, args: &[(String, String)]) -> Option<String> {
    format_with(translation, |name| args.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
}

/// A language's translations.
#[derive(Clone, Debug)]
struct Catalog {
    lang: String,
    rule: plural::Rule,
    /// msgid -> msgstr (or msgstr[0..n] of a plural entry); untranslated and fuzzy entries left out.
    strings: HashMap<String, Vec<String>>,
}

/// Every language Gatehouse speaks, and the messages it knows.
#[derive(Clone, Debug)]
pub struct Catalogs {
    /// msgids without arguments.
    plain: std::collections::HashSet<String>,
    patterns: Vec<Pattern>,
    catalogs: Vec<Catalog>,
}

/// Why a catalog was refused.
pub fn located(file: &str, (line, why): (usize, String)) -> String {
    format!("{file} line {line}: {why}")
}

impl Catalogs {
    /// The catalogs built into the binary (checked once; the build already refused broken ones).
    pub fn get() -> &'static Catalogs {
        static CATALOGS: OnceLock<Catalogs> = OnceLock::new();
        CATALOGS.get_or_init(|| match Self::load(TEMPLATE, EMBEDDED) {
            Ok(c) => c,
            Err(e) => {
                // The build script parses the same files with the same code; reaching this means
                // the binary was built around it. English still works.
                tracing::error!(error = %e, "message catalogs unreadable; English only");
                Self { plain: Default::default(), patterns: Vec::new(), catalogs: Vec::new() }
            }
        })
    }

    /// Reads the template and the `(language, .po contents)` catalogs.
    pub fn load(template: &str, catalogs: &[(&str, &str)]) -> Result<Self, String> {
        let pot = po::parse(template).map_err(|e| located("gatehouse.pot", e))?;
        let mut plain = std::collections::HashSet::new();
        let mut patterns = Vec::new();
        for e in &pot.entries {
            let mut forms = vec![pieces(&e.msgid).map_err(|why| located("gatehouse.pot", (e.line, why)))?];
            if let Some(p) = &e.msgid_plural {
                forms.push(pieces(p).map_err(|why| located("gatehouse.pot", (e.line, why)))?);
            }
            if forms.iter().all(|f| f.iter().all(|p| matches!(p, Piece::Text(_)))) && e.msgid_plural.is_none() {
                plain.insert(e.msgid.replace("%%", "%"));
            } else {
                patterns.push(Pattern { msgid: e.msgid.clone(), forms });
            }
        }
        let mut loaded = Vec::new();
        for (lang, src) in catalogs {
            let file = format!("{lang}.po");
            let parsed = po::parse(src).map_err(|e| located(&file, e))?;
            let rule = match parsed.header("Plural-Forms") {
                Some(h) => plural::Rule::parse(h).map_err(|why| format!("{file}: {why}"))?,
                None => plural::Rule::default(),
            };
            let mut strings = HashMap::new();
            for e in parsed.entries.iter().filter(|e| !e.fuzzy && e.context.is_none()) {
                if e.msgstr.iter().any(String::is_empty) {
                    continue;
                }
                let want = arg_names(&e.msgid).map_err(|why| located(&file, (e.line, why)))?;
                for s in &e.msgstr {
                    let got = arg_names(s).map_err(|why| located(&file, (e.line, why)))?;
                    if got.iter().any(|n| !want.contains(n)) {
                        return Err(located(
                            &file,
                            (e.line, format!("the translation uses {got:?}, the msgid only {want:?}")),
                        ));
                    }
                }
                if e.msgid_plural.is_some() && e.msgstr.len() != rule.nplurals {
                    return Err(located(
                        &file,
                        (e.line, format!("{} plural forms, Plural-Forms says {}", e.msgstr.len(), rule.nplurals)),
                    ));
                }
                strings.insert(e.msgid.clone(), e.msgstr.clone());
            }
            loaded.push(Catalog { lang: lang.to_ascii_lowercase(), rule, strings });
        }
        loaded.sort_by(|a, b| a.lang.cmp(&b.lang));
        Ok(Self { plain, patterns, catalogs: loaded })
    }

    /// Every language, English first.
    pub fn languages(&self) -> Vec<&str> {
        std::iter::once(SOURCE).chain(self.catalogs.iter().map(|c| c.lang.as_str())).collect()
    }

    /// The language as this set spells it (`fr`, `pt-br`), if it is one of them.
    pub fn known(&self, lang: &str) -> Option<&str> {
        known_in(&self.languages(), lang)
    }

    /// Whether `text` is one of the messages (a msgid, or a msgid's form with its arguments).
    pub fn knows(&self, text: &str) -> bool {
        self.plain.contains(text) || self.patterns.iter().any(|p| p.forms.iter().any(|f| matches(f, text).is_some()))
    }

    /// `text` (an English message) in `lang`; the English when `lang` has no translation of it.
    pub fn translate<'a>(&self, lang: &str, text: &'a str) -> Cow<'a, str> {
        let Some(catalog) = self.catalogs.iter().find(|c| c.lang == lang) else {
            return Cow::Borrowed(text);
        };
        if self.plain.contains(text) {
            return match catalog.strings.get(text).and_then(|s| s.first()) {
                Some(t) => Cow::Owned(t.replace("%%", "%")),
                None => Cow::Borrowed(text),
            };
        }
        for p in &self.patterns {
            let Some(args) = p.forms.iter().find_map(|f| matches(f, text)) else { continue };
            let Some(strs) = catalog.strings.get(&p.msgid) else { return Cow::Borrowed(text) };
            let form = if p.forms.len() > 1 {
                let n = p.forms[0]
                    .iter()
                    .find_map(|piece| match piece {
                        Piece::Arg { name, digits: true } => args.iter().find(|(a, _)| a == name),
                        _ => None,
                    })
                    .and_then(|(_, v)| v.parse::<u64>().ok())
                    .unwrap_or(1);
                catalog.rule.form(n)
            } else {
                0
            };
            return match strs.get(form).and_then(|t| fill(t, &args)) {
                Some(t) => Cow::Owned(t),
                None => Cow::Borrowed(text),
            };
        }
        Cow::Borrowed(text)
    }

    /// A msgid of a template (`{% trans %}`), as is: no arguments are read out of it.
    pub fn gettext<'a>(&self, lang: &str, msgid: &'a str) -> Cow<'a, str> {
        match self.catalogs.iter().find(|c| c.lang == lang).and_then(|c| c.strings.get(msgid)).and_then(|s| s.first()) {
            Some(t) => Cow::Owned(t.clone()),
            None => Cow::Borrowed(msgid),
        }
    }

    /// The language for a request's `Accept-Language`, as Django's `get_language_from_request`
    /// picks it: languages in quality order (ties in the order given, `q=0` never), each matched
    /// exactly, then by its primary subtag (`fr-CA` -> `fr`), then as the prefix of a regional
    /// variant we have (`pt` -> `pt-br`). `None` when nothing matches (`*` matches nothing:
    /// the default applies).
    pub fn negotiate(&self, header: &str) -> Option<&str> {
        negotiate_in(&self.languages(), header)
    }
}

/// The languages built into the binary, English first, read from the catalogs' names alone: the
/// settings check (`LANGUAGE_CODE`) and every request's `Accept-Language` need no more, and
/// parsing the catalogs ([`Catalogs::get`]) costs about 13 million instructions, 25 times a cold
/// start's own work. They are parsed when a message, email or page is first translated.
pub fn languages() -> &'static [&'static str] {
    static LANGUAGES: OnceLock<Vec<&'static str>> = OnceLock::new();
    LANGUAGES.get_or_init(|| std::iter::once(SOURCE).chain(EMBEDDED.iter().map(|(lang, _)| *lang)).collect())
}

/// [`Catalogs::known`] of the built-in catalogs, without parsing them.
pub fn known(lang: &str) -> Option<&'static str> {
    known_in(languages(), lang)
}

/// [`Catalogs::negotiate`] of the built-in catalogs, without parsing them.
pub fn negotiate(header: &str) -> Option<&'static str> {
    negotiate_in(languages(), header)
}

fn known_in<'a>(langs: &[&'a str], lang: &str) -> Option<&'a str> {
    let lang = lang.trim().to_ascii_lowercase().replace('_', "-");
    langs.iter().find(|l| **l == lang).copied()
}

fn negotiate_in<'a>(langs: &[&'a str], header: &str) -> Option<&'a str> {
    let mut ranges: Vec<(u16, usize, String)> = Vec::new();
    for (i, item) in header.split(',').enumerate().take(32) {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase().replace('_', "-");
        if tag.is_empty() || tag == "*" || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            continue;
        }
        let mut q = 1000u16;
        for param in parts {
            if let Some(v) = param.trim().strip_prefix("q=") {
                q = quality(v).unwrap_or(0);
            }
        }
        if q > 0 {
            ranges.push((q, i, tag));
        }
    }
    ranges.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, _, tag) in &ranges {
        let primary = tag.split('-').next().unwrap_or(tag);
        let found = langs
            .iter()
            .find(|l| **l == tag)
            .or_else(|| langs.iter().find(|l| **l == primary))
            .or_else(|| langs.iter().find(|l| l.split('-').next() == Some(primary)));
        if let Some(l) = found {
            return Some(l);
        }
    }
    None
}

/// A quality value (`0`, `0.5`, `1.000`) in thousandths; `None` when malformed.
fn quality(v: &str) -> Option<u16> {
    let v = v.trim();
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if !(int == "0" || int == "1") || frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{frac:0<3}").parse::<u16>().ok()?;
    let q = if int == "1" { 1000 } else { thousandths };
    (q <= 1000 && !(int == "1" && thousandths > 0)).then_some(q)
}

/// The language of the request being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Language {
    /// The language the response speaks.
    pub code: &'static str,
    /// Whether the caller asked for it (`Accept-Language` matched one of ours): only then is it
    /// stored on a new account.
    pub asked: bool,
}

tokio::task_local! {
    static LANGUAGE: Language;
}

/// Runs `fut` with `lang` as the request's language.
pub async fn within<F: std::future::Future>(lang: Language, fut: F) -> F::Output {
    LANGUAGE.scope(lang, fut).await
}

/// The language the request being served asked for, if it asked for one of ours.
pub fn asked() -> Option<&'static str> {
    LANGUAGE.try_with(|l| l.asked.then_some(l.code)).ok().flatten()
}

/// Fields of an error body that carry data, not messages (`mfa_required`'s).
const NOT_MESSAGES: [&str; 3] = ["mfa_token", "methods", "webauthn"];

/// The messages of an error body (`{"detail": ...}`, `{"field": [...]}`, nested ones), the
/// strings a response translates: `detail` and every string inside a list. Machine codes (`code`)
/// and field names are never messages, nor the data fields of [`NOT_MESSAGES`].
pub fn messages_mut(body: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match body {
        Value::Object(fields) => {
            for (k, v) in fields.iter_mut() {
                if NOT_MESSAGES.contains(&k.as_str()) {
                    continue;
                }
                match v {
                    Value::String(s) if k == "detail" => f(s),
                    Value::Array(items) => {
                        for item in items {
                            match item {
                                Value::String(s) => f(s),
                                other => messages_mut(other, f),
                            }
                        }
                    }
                    Value::Object(_) => messages_mut(v, f),
                    _ => {}
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match item {
                    Value::String(s) => f(s),
                    other => messages_mut(other, f),
                }
            }
        }
        _ => {}
    }
}

/// Translates the messages of an error body into `lang`.
pub fn translate_body(body: &mut Value, lang: &str) {
    let catalogs = Catalogs::get();
    messages_mut(body, &mut |s| {
        if let Cow::Owned(t) = catalogs.translate(lang, s) {
            *s = t;
        }
    });
}

#[cfg(test)]
mod tests;
