//! `authctl import-django FILE`: a Django project's users, groups and permissions, from the JSON
//! that `python manage.py dumpdata <user model> auth.group --natural-foreign --natural-primary`
//! writes, imported so that nobody has to reset a password.
//!
//! The file is read twice, one record at a time (stdin, `-`, is kept in memory as text for
//! that): the first pass checks the whole file and gathers the groups, the permissions and the
//! references the users make, so that nothing is written when the file cannot be imported (not
//! JSON, or primary keys that the dump itself cannot resolve); the permissions and groups are
//! then written, and the second pass writes the users as they are read, a few at a time.
//!
//! Nothing that exists is ever overwritten: an address (or username) taken in Gatehouse skips
//! the record, an existing group is left as it is, a registered permission too. Running the
//! same import again therefore writes nothing, and an interrupted one resumes where it stopped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_core::domain::{Email, Group, Permission, User, UserId, Username};
use gatehouse_core::password::{stored_hash_format, HashFormat};
use gatehouse_core::ports::{CreateUserError, GroupStore, StoreError, UserStore};
use gatehouse_core::services::audit::{self, Event};
use gatehouse_core::services::permissions;
use gatehouse_core::store::DynamoStore;
use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

use crate::args::Args;
use crate::env::{self, now};
use crate::Fail;

/// Accounts written at the same time (against DynamoDB; see [`writers`]).
const WRITERS: usize = 8;
/// Keys per batch read (DynamoDB's BatchGetItem limit).
const BATCH: usize = 100;
/// Models that are never the user model.
const NOT_USERS: [&str; 3] = ["auth.group", "auth.permission", "contenttypes.contenttype"];
/// What to run in Django, for the messages (`{model}`: the user model).
const DUMPDATA: &str = "python manage.py dumpdata {model} auth.group --natural-foreign --natural-primary";
/// The id a group or permission would get, in a dry run.
const DRY_RUN_ID: &str = "(dry run)";

pub async fn run(args: &Args) -> Result<(), Fail> {
    let Some(path) = args.operands.first() else {
        return Err(Fail::usage(
            "import-django: FILE is required: the JSON dumpdata wrote, or - for stdin (see authctl import-django --help)",
        ));
    };
    let user_model = match args.value("user-model") {
        Some(raw) => Some(user_model_arg(raw)?),
        None => None,
    };
    let options = Options {
        dry_run: args.switch("dry-run"),
        json: args.switch("json"),
        unusable_unsupported: args.switch("unusable-unsupported"),
    };
    let source = Source::open(path).await?;
    let survey = {
        let (source, user_model) = (source.clone(), user_model.clone());
        blocking(move || survey(&source, user_model.as_deref())).await??
    };
    let plan = resolve(survey, user_model, &source)?;
    let store = env::store().await?;
    let mut report = Report::new(&plan, &source, options.dry_run);
    let outcome = import(&store, &plan, &source, options, &mut report).await;
    if let Err(fail) = &outcome {
        report.error = fail.lines.first().cloned();
    }
    let text = if options.json { format!("{}\n", report.json()) } else { report.human() };
    // A closed pipe (`| head`) is the reader's choice, not an error.
    if let Err(e) = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(Fail::runtime(format!("writing the report: {e}")));
        }
    }
    outcome?;
    match report.problems.len() {
        0 => Ok(()),
        n => Err(Fail::refused(format!(
            "{n} record{} {} skipped or refused (listed above); everything else was {}",
            if n == 1 { "" } else { "s" },
            match (n, options.dry_run) {
                (_, true) => "would be",
                (1, false) => "was",
                (_, false) => "were",
            },
            if options.dry_run { "checked, nothing written" } else { "imported" },
        ))),
    }
}

#[derive(Clone, Copy)]
struct Options {
    dry_run: bool,
    json: bool,
    unusable_unsupported: bool,
}

fn user_model_arg(raw: &str) -> Result<String, Fail> {
    let model = raw.trim().to_ascii_lowercase();
    let well_formed = model.split_once('.').is_some_and(|(app, name)| {
        let part = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        part(app) && part(name)
    });
    if !well_formed {
        return Err(Fail::usage(format!("--user-model '{raw}': must be app_label.model, e.g. accounts.user")));
    }
    if NOT_USERS.contains(&model.as_str()) {
        return Err(Fail::usage(format!("--user-model '{raw}': that is not a user model")));
    }
    Ok(model)
}

/// Runs blocking work (file reading and parsing) off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, Fail> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Fail::runtime(format!("reading the dump: {e}")))
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Where the dump is: a file, read again for each pass, or stdin, kept in memory.
#[derive(Clone)]
enum Source {
    File(PathBuf),
    Memory(Arc<[u8]>),
}

impl Source {
    async fn open(path: &str) -> Result<Self, Fail> {
        if path != "-" {
            // Opened once here so that a missing or unreadable file is a usage error up front.
            std::fs::File::open(path).map_err(|e| Fail::usage(format!("cannot read {path}: {e}")))?;
            return Ok(Self::File(PathBuf::from(path)));
        }
        if std::io::stdin().is_terminal() {
            eprintln!("authctl: reading the dump from the terminal (end it with Ctrl-D)");
        }
        let read = blocking(|| {
            let mut text = Vec::new();
            std::io::stdin().lock().read_to_end(&mut text).map(|_| text)
        });
        let text = read.await?.map_err(|e| Fail::usage(format!("cannot read stdin: {e}")))?;
        Ok(Self::Memory(text.into()))
    }

    fn name(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Memory(_) => "stdin".to_owned(),
        }
    }

    fn reader(&self) -> std::io::Result<Box<dyn Read + Send>> {
        Ok(match self {
            Self::File(path) => Box::new(std::io::BufReader::with_capacity(1 << 16, std::fs::File::open(path)?)),
            Self::Memory(text) => Box::new(std::io::Cursor::new(text.clone())),
        })
    }
}

/// One record of the dump, as dumpdata writes it. `fields` is kept as JSON values: which fields
/// there are, and of what type, depends on the model.
#[derive(Deserialize)]
struct Record {
    model: String,
    #[serde(default)]
    pk: Option<Value>,
    #[serde(default)]
    fields: Map<String, Value>,
}

impl Record {
    fn pk(&self) -> Value {
        self.pk.clone().unwrap_or(Value::Null)
    }

    /// A string field: `None` when absent or null.
    fn text(&self, name: &str) -> Result<Option<&str>, String> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(format!("{name}: {other} is not a string")),
        }
    }

    /// A boolean field: `default` when absent or null.
    fn flag(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(format!("{name}: {other} is not true or false")),
        }
    }

    /// A list field (many-to-many references): empty when absent or null.
    fn list(&self, name: &str) -> Result<&[Value], String> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(&[]),
            Some(Value::Array(items)) => Ok(items),
            Some(other) => Err(format!("{name}: {other} is not a list")),
        }
    }

    /// How messages name the record.
    fn label(&self, position: usize) -> String {
        match &self.pk {
            Some(pk) if !pk.is_null() => format!("record {position} ({} pk {pk})", self.model),
            _ => format!("record {position} ({})", self.model),
        }
    }
}

/// Why a pass stopped.
enum ReadError {
    Io(std::io::Error),
    Json(serde_json::Error),
}

/// Calls `each` with every record of the dump and its position (from 1), in order, holding one
/// record at a time. An error `each` returns stops the reading and is reported with the position
/// in the file.
fn each_record(source: &Source, each: impl FnMut(usize, Record) -> Result<(), String>) -> Result<(), ReadError> {
    struct Records<F>(F);
    impl<'de, F: FnMut(usize, Record) -> Result<(), String>> Visitor<'de> for Records<F> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON array of dumpdata records")
        }
        fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
            let mut position = 0;
            while let Some(record) = seq.next_element::<Record>()? {
                position += 1;
                (self.0)(position, record).map_err(A::Error::custom)?;
            }
            Ok(())
        }
    }
    let reader = source.reader().map_err(ReadError::Io)?;
    let mut de = serde_json::Deserializer::from_reader(reader);
    de.deserialize_seq(Records(each)).and_then(|()| de.end()).map_err(|e| match e.is_io() {
        true => ReadError::Io(std::io::Error::other(e)),
        false => ReadError::Json(e),
    })
}

fn read_failure(source: &Source, e: ReadError) -> Fail {
    match e {
        ReadError::Io(e) => Fail::usage(format!("cannot read {}: {e}", source.name())),
        ReadError::Json(e) => {
            Fail::usage(format!("{}: not a dump dumpdata wrote: {e}; nothing was imported", source.name()))
        }
    }
}

/// A primary key as a lookup key (`1` and `"1"` are the same key; dumps are consistent anyway).
fn pk_key(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// A user's group: its name (natural key `["name"]`) or its primary key.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum GroupRef {
    Name(String),
    Pk(String),
}

impl GroupRef {
    fn read(v: &Value) -> Result<Self, String> {
        match v {
            Value::Array(key) => match key.as_slice() {
                [Value::String(name)] => Ok(Self::Name(name.clone())),
                _ => Err(format!("groups: {v} is not a group's natural key [\"name\"]")),
            },
            other => pk_key(other).map(Self::Pk).ok_or_else(|| format!("groups: {v} is not a group")),
        }
    }
}

/// A permission: its natural key `[codename, app_label, model]` or its primary key.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
enum PermRef {
    Natural { app_label: String, codename: String },
    Pk(String),
}

impl PermRef {
    fn read(field: &str, v: &Value) -> Result<Self, String> {
        match v {
            Value::Array(key) => match key.as_slice() {
                [Value::String(codename), Value::String(app_label), Value::String(_model)] => {
                    Ok(Self::Natural { app_label: app_label.clone(), codename: codename.clone() })
                }
                _ => Err(format!("{field}: {v} is not a permission's natural key [codename, app_label, model]")),
            },
            other => pk_key(other).map(Self::Pk).ok_or_else(|| format!("{field}: {v} is not a permission")),
        }
    }
}

/// What Gatehouse calls a Django permission: `app_label.codename`, the string `user.has_perm`
/// takes.
fn gatehouse_codename(app_label: &str, codename: &str) -> String {
    format!("{app_label}.{codename}")
}

/// An `auth.group` record.
struct DumpGroup {
    pk: Value,
    /// The name, or why there is none.
    name: Result<String, String>,
    permissions: Vec<PermRef>,
}

/// An `auth.permission` record (read only to resolve primary keys and to learn names).
struct DumpPermission {
    /// The primary key as the dump has it (null without one).
    raw_pk: Value,
    pk: Option<String>,
    codename: String,
    /// The app label, or the content type's primary key.
    content_type: Result<String, String>,
    name: String,
}

/// The references of one candidate user model's records.
#[derive(Default)]
struct Refs {
    records: usize,
    groups: BTreeSet<GroupRef>,
    permissions: BTreeSet<PermRef>,
}

/// What the first pass learns.
#[derive(Default)]
struct Survey {
    /// Records per model.
    counts: BTreeMap<String, usize>,
    /// Models whose records look like users (a password and an email field), or the one named.
    candidates: BTreeMap<String, Refs>,
    groups: Vec<DumpGroup>,
    permissions: Vec<DumpPermission>,
    /// contenttypes.contenttype: primary key → app label.
    content_types: HashMap<String, String>,
}

/// The first pass: the whole file, checked, with every record but the users' kept.
fn survey(source: &Source, user_model: Option<&str>) -> Result<Survey, Fail> {
    let mut s = Survey::default();
    let result = each_record(source, |position, record| {
        *s.counts.entry(record.model.clone()).or_default() += 1;
        let at = |why: String| format!("{}: {why}", record.label(position));
        match record.model.as_str() {
            "auth.group" => {
                let name = match record.text("name") {
                    Ok(Some(name)) => Ok(name.to_owned()),
                    Ok(None) => Err("no name".to_owned()),
                    Err(why) => Err(why),
                };
                let perms = record.list("permissions").map_err(at)?;
                let permissions =
                    perms.iter().map(|p| PermRef::read("permissions", p)).collect::<Result<_, _>>().map_err(at)?;
                s.groups.push(DumpGroup { pk: record.pk(), name, permissions });
            }
            "auth.permission" => {
                let (Ok(Some(codename)), Some(ct)) = (record.text("codename"), record.fields.get("content_type"))
                else {
                    return Ok(());
                };
                let content_type = match ct {
                    Value::Array(key) => match key.as_slice() {
                        [Value::String(app_label), Value::String(_)] => Ok(app_label.clone()),
                        _ => return Ok(()),
                    },
                    other => Err(pk_key(other).unwrap_or_default()),
                };
                let name = record.text("name").ok().flatten().unwrap_or_default().to_owned();
                let pk = record.pk.as_ref().and_then(pk_key);
                let permission =
                    DumpPermission { raw_pk: record.pk(), pk, codename: codename.to_owned(), content_type, name };
                s.permissions.push(permission);
            }
            "contenttypes.contenttype" => {
                if let (Some(pk), Ok(Some(app_label))) = (record.pk.as_ref().and_then(pk_key), record.text("app_label"))
                {
                    s.content_types.insert(pk, app_label.to_owned());
                }
            }
            model => {
                let is_user = match user_model {
                    Some(named) => named == model,
                    None => record.fields.contains_key("password") && record.fields.contains_key("email"),
                };
                if is_user {
                    let refs = s.candidates.entry(model.to_owned()).or_default();
                    refs.records += 1;
                    for g in record.list("groups").map_err(at)? {
                        refs.groups.insert(GroupRef::read(g).map_err(at)?);
                    }
                    for p in record.list("user_permissions").map_err(at)? {
                        refs.permissions.insert(PermRef::read("user_permissions", p).map_err(at)?);
                    }
                }
            }
        }
        Ok(())
    });
    result.map_err(|e| read_failure(source, e))?;
    Ok(s)
}

/// A permission the dump refers to.
struct PermPlan {
    /// Django's name when an auth.permission record gives it, else the codename.
    name: String,
    /// The auth.permission record's primary key, if there is one.
    pk: Value,
}

/// Everything but the users, resolved: what the import writes before the second pass.
struct Plan {
    user_model: Option<String>,
    users: usize,
    ignored: BTreeMap<String, usize>,
    /// auth.permission primary key → Gatehouse codename.
    perm_by_pk: HashMap<String, String>,
    /// Every permission referred to, by Gatehouse codename.
    permissions: BTreeMap<String, PermPlan>,
    /// auth.group primary key → name.
    group_by_pk: HashMap<String, String>,
    /// The dump's groups, their permissions as Gatehouse codenames.
    groups: Vec<(Value, Result<String, String>, Vec<String>)>,
    /// Group names users refer to that the dump does not hold.
    outside_groups: BTreeSet<String>,
}

/// Picks the user model and resolves every reference; a dump whose references cannot be
/// resolved is refused whole, before anything is written.
fn resolve(s: Survey, user_model: Option<String>, source: &Source) -> Result<Plan, Fail> {
    let user_model = match user_model {
        Some(named) => {
            if !s.counts.contains_key(&named) {
                let held: Vec<&str> = s.counts.keys().map(String::as_str).collect();
                return Err(Fail::usage(format!(
                    "{}: holds no {named} records (it holds: {}); nothing was imported",
                    source.name(),
                    if held.is_empty() { "nothing".to_owned() } else { held.join(", ") },
                )));
            }
            Some(named)
        }
        None => match s.candidates.len() {
            0 => None,
            1 => s.candidates.keys().next().cloned(),
            _ => {
                let models: Vec<&str> = s.candidates.keys().map(String::as_str).collect();
                return Err(Fail::usage(format!(
                    "{}: records of several models have a password and an email ({}): name the user model \
                     with --user-model; nothing was imported",
                    source.name(),
                    models.join(", "),
                )));
            }
        },
    };
    let refs = user_model.as_ref().and_then(|m| s.candidates.get(m));
    let flags = || DUMPDATA.replace("{model}", user_model.as_deref().unwrap_or("<user model>"));

    // Permissions: the ones auth.permission records describe (primary keys, names).
    let mut perm_by_pk = HashMap::new();
    let mut names: HashMap<String, (String, Value)> = HashMap::new();
    for p in &s.permissions {
        let app_label = match &p.content_type {
            Ok(app_label) => Some(app_label.clone()),
            Err(ct) => s.content_types.get(ct).cloned(),
        };
        let Some(app_label) = app_label else { continue };
        let codename = gatehouse_codename(&app_label, &p.codename);
        if let Some(pk) = &p.pk {
            perm_by_pk.insert(pk.clone(), codename.clone());
        }
        names.entry(codename).or_insert((p.name.clone(), p.raw_pk.clone()));
    }
    let referred = s.groups.iter().flat_map(|g| &g.permissions).chain(refs.iter().flat_map(|r| &r.permissions));
    let mut permissions = BTreeMap::new();
    let mut unresolved = BTreeSet::new();
    for p in referred {
        let codename = match p {
            PermRef::Natural { app_label, codename } => gatehouse_codename(app_label, codename),
            PermRef::Pk(pk) => match perm_by_pk.get(pk) {
                Some(c) => c.clone(),
                None => {
                    unresolved.insert(pk.clone());
                    continue;
                }
            },
        };
        let (name, pk) = names.get(&codename).cloned().unwrap_or_default();
        let name = if name.trim().is_empty() { codename.clone() } else { name };
        permissions.entry(codename).or_insert(PermPlan { name, pk });
    }
    if !unresolved.is_empty() {
        let why = if s.permissions.is_empty() {
            "and holds no auth.permission records"
        } else {
            "that its auth.permission (and contenttypes) records do not resolve"
        };
        return Err(Fail::usage(format!(
            "{}: names permissions by primary key ({}) {why}: it was written without natural keys. Dump it \
             again with `{}`; nothing was imported",
            source.name(),
            examples(&unresolved),
            flags(),
        )));
    }

    // Groups.
    let mut group_by_pk = HashMap::new();
    let mut groups = Vec::new();
    for g in s.groups {
        if let (Some(pk), Ok(name)) = (pk_key(&g.pk), &g.name) {
            group_by_pk.insert(pk, name.clone());
        }
        let mut codenames: Vec<String> = g
            .permissions
            .iter()
            .filter_map(|p| match p {
                PermRef::Natural { app_label, codename } => Some(gatehouse_codename(app_label, codename)),
                PermRef::Pk(pk) => perm_by_pk.get(pk).cloned(),
            })
            .collect();
        codenames.sort();
        codenames.dedup();
        groups.push((g.pk, g.name, codenames));
    }
    let in_dump: BTreeSet<&String> = groups.iter().filter_map(|(_, name, _)| name.as_ref().ok()).collect();
    let mut outside_groups = BTreeSet::new();
    let mut unresolved = BTreeSet::new();
    for r in refs.iter().flat_map(|r| &r.groups) {
        match r {
            GroupRef::Name(name) if !in_dump.contains(name) => {
                outside_groups.insert(name.clone());
            }
            GroupRef::Name(_) => {}
            GroupRef::Pk(pk) if !group_by_pk.contains_key(pk) => {
                unresolved.insert(pk.clone());
            }
            GroupRef::Pk(_) => {}
        }
    }
    if !unresolved.is_empty() {
        return Err(Fail::usage(format!(
            "{}: names groups by primary key ({}) without the auth.group records that say which: dump it again \
             with `{}`; nothing was imported",
            source.name(),
            examples(&unresolved),
            flags(),
        )));
    }

    let users = user_model.as_ref().and_then(|m| s.counts.get(m)).copied().unwrap_or(0);
    let ignored =
        s.counts.into_iter().filter(|(model, _)| Some(model) != user_model.as_ref() && model != "auth.group").collect();
    Ok(Plan { user_model, users, ignored, perm_by_pk, permissions, group_by_pk, groups, outside_groups })
}

/// A few of `items`, for a message.
fn examples(items: &BTreeSet<String>) -> String {
    let shown: Vec<&str> = items.iter().take(5).map(String::as_str).collect();
    match items.len() {
        n if n > shown.len() => format!("pk {} and {} more", shown.join(", "), n - shown.len()),
        _ => format!("pk {}", shown.join(", ")),
    }
}

/// Unix seconds of an ISO 8601 date-time as Django's serializer writes it (`2024-05-01T10:20:30.123Z`,
/// `...+02:00`; fractions of a second are dropped). One without an offset (a project with
/// `USE_TZ = False`) is taken as UTC; a date alone is its midnight, UTC.
pub fn parse_datetime(raw: &str) -> Option<i64> {
    let s = raw.trim().as_bytes();
    let mut at = 0usize;
    let number = |at: &mut usize, digits: usize| -> Option<i64> {
        let part = s.get(*at..*at + digits)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        *at += digits;
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let expect = |at: &mut usize, c: u8| -> Option<()> { (s.get(*at) == Some(&c)).then(|| *at += 1) };
    let year = number(&mut at, 4)?;
    expect(&mut at, b'-')?;
    let month = number(&mut at, 2)?;
    expect(&mut at, b'-')?;
    let day = number(&mut at, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (mut hour, mut minute, mut second, mut offset) = (0, 0, 0, 0);
    if at < s.len() {
        if !matches!(s[at], b'T' | b't' | b' ') {
            return None;
        }
        at += 1;
        hour = number(&mut at, 2)?;
        expect(&mut at, b':')?;
        minute = number(&mut at, 2)?;
        if expect(&mut at, b':').is_some() {
            second = number(&mut at, 2)?;
            if matches!(s.get(at), Some(b'.' | b',')) {
                at += 1;
                let digits = s[at..].iter().take_while(|b| b.is_ascii_digit()).count();
                if digits == 0 {
                    return None;
                }
                at += digits;
            }
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        match s.get(at) {
            None => {}
            Some(b'Z' | b'z') if at + 1 == s.len() => {}
            Some(&sign @ (b'+' | b'-')) => {
                at += 1;
                let hours = number(&mut at, 2)?;
                let _ = expect(&mut at, b':');
                let minutes = if at < s.len() { number(&mut at, 2)? } else { 0 };
                if at != s.len() || hours > 23 || minutes > 59 {
                    return None;
                }
                offset = (hours * 3600 + minutes * 60) * if sign == b'-' { -1 } else { 1 };
            }
            Some(_) => return None,
        }
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second.min(59) - offset)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

// ---------------------------------------------------------------------------------------------
// The report

#[derive(Default)]
struct Tally {
    total: usize,
    imported: usize,
    /// Present already and left as it is, as expected (permissions only: built in or registered).
    existing: usize,
    skipped: usize,
    refused: usize,
}

/// A record that was skipped or refused, or imported with a note.
struct Entry {
    kind: &'static str,
    model: String,
    pk: Value,
    /// The email, group name or codename.
    key: String,
    /// `skipped`, `refused`, or `note`.
    outcome: &'static str,
    reason: String,
    /// Position in the dump (users), for the order of the report.
    position: usize,
}

impl Entry {
    fn line(&self) -> String {
        let pk = if self.pk.is_null() { String::new() } else { format!(" pk {}", self.pk) };
        let key = if self.key.is_empty() { String::new() } else { format!(" ({})", self.key) };
        let outcome = if self.outcome == "note" { String::new() } else { format!("{}: ", self.outcome) };
        format!("  {}{pk}{key}: {outcome}{}\n", self.model, self.reason)
    }

    fn json(&self) -> Value {
        let mut v = json!({"kind": self.kind, "model": self.model, "pk": self.pk, "key": self.key});
        if self.outcome == "note" {
            v["note"] = json!(self.reason);
        } else {
            v["outcome"] = json!(self.outcome);
            v["reason"] = json!(self.reason);
        }
        v
    }
}

struct Report {
    source: String,
    dry_run: bool,
    user_model: Option<String>,
    users: Tally,
    groups: Tally,
    permissions: Tally,
    ignored: BTreeMap<String, usize>,
    problems: Vec<Entry>,
    notes: Vec<Entry>,
    /// The error that stopped the import, if one did.
    error: Option<String>,
}

impl Report {
    fn new(plan: &Plan, source: &Source, dry_run: bool) -> Self {
        Self {
            source: source.name(),
            dry_run,
            user_model: plan.user_model.clone(),
            users: Tally { total: plan.users, ..Tally::default() },
            groups: Tally::default(),
            permissions: Tally::default(),
            ignored: plan.ignored.clone(),
            problems: Vec::new(),
            notes: Vec::new(),
            error: None,
        }
    }

    fn problem(&mut self, kind: &'static str, model: &str, pk: Value, key: &str, skipped: bool, reason: String) {
        let tally = match kind {
            "user" => &mut self.users,
            "group" => &mut self.groups,
            _ => &mut self.permissions,
        };
        if skipped {
            tally.skipped += 1;
        } else {
            tally.refused += 1;
        }
        let outcome = if skipped { "skipped" } else { "refused" };
        self.problems.push(Entry {
            kind,
            model: model.to_owned(),
            pk,
            key: key.to_owned(),
            outcome,
            reason,
            position: 0,
        });
    }

    fn sort(&mut self) {
        let order = |e: &Entry| (["permission", "group", "user"].iter().position(|k| *k == e.kind), e.position);
        self.problems.sort_by_key(order);
        self.notes.sort_by_key(order);
    }

    fn json(&mut self) -> Value {
        self.sort();
        let tally = |t: &Tally, existing: bool| {
            let mut v = json!({"total": t.total, "imported": t.imported, "skipped": t.skipped, "refused": t.refused});
            if existing {
                v["existing"] = json!(t.existing);
            }
            v
        };
        json!({
            "source": self.source,
            "dry_run": self.dry_run,
            "user_model": self.user_model,
            "users": tally(&self.users, false),
            "groups": tally(&self.groups, false),
            "permissions": tally(&self.permissions, true),
            "ignored": {"records": self.ignored.values().sum::<usize>(), "models": self.ignored},
            "problems": self.problems.iter().map(Entry::json).collect::<Vec<_>>(),
            "notes": self.notes.iter().map(Entry::json).collect::<Vec<_>>(),
            "complete": self.error.is_none(),
            "error": self.error,
        })
    }

    fn human(&mut self) -> String {
        self.sort();
        let verb = if self.dry_run { "would be imported" } else { "imported" };
        let registered = if self.dry_run { "would be registered" } else { "registered" };
        let mut out = format!(
            "{}: {} {} record{}, {} group{}",
            self.source,
            self.users.total,
            self.user_model.as_deref().unwrap_or("user"),
            if self.users.total == 1 { "" } else { "s" },
            self.groups.total,
            if self.groups.total == 1 { "" } else { "s" },
        );
        let ignored: usize = self.ignored.values().sum();
        if ignored > 0 {
            let by_model: Vec<String> = self.ignored.iter().map(|(m, n)| format!("{m} {n}")).collect();
            out.push_str(&format!(
                "; {ignored} other record{} not imported ({})",
                plural(ignored),
                by_model.join(", ")
            ));
        }
        out.push('\n');
        if self.dry_run {
            out.push_str("dry run: nothing was written\n");
        }
        let (u, g, p) = (&self.users, &self.groups, &self.permissions);
        out.push_str(&format!("users:       {} {verb}, {} skipped, {} refused\n", u.imported, u.skipped, u.refused));
        out.push_str(&format!("groups:      {} {verb}, {} skipped, {} refused\n", g.imported, g.skipped, g.refused));
        out.push_str(&format!(
            "permissions: {} {registered}, {} present already (built in or registered), {} refused\n",
            p.imported, p.existing, p.refused
        ));
        if !self.problems.is_empty() {
            out.push_str("skipped or refused:\n");
            self.problems.iter().for_each(|e| out.push_str(&e.line()));
        }
        if !self.notes.is_empty() {
            out.push_str("notes:\n");
            self.notes.iter().for_each(|e| out.push_str(&e.line()));
        }
        if let Some(error) = &self.error {
            out.push_str(&format!("STOPPED: {error}\n"));
        }
        out
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

fn service(e: gatehouse_core::services::ServiceError) -> Fail {
    match e {
        gatehouse_core::services::ServiceError::Unavailable(why) => Fail::runtime(format!("store unavailable: {why}")),
        other => Fail::runtime(other.to_string()),
    }
}

fn random_id() -> Result<String, Fail> {
    gatehouse_core::secrets::random_id().map_err(|e| Fail::runtime(format!("random: {e}")))
}

async fn import(
    store: &DynamoStore,
    plan: &Plan,
    source: &Source,
    options: Options,
    report: &mut Report,
) -> Result<(), Fail> {
    let perm_ids = import_permissions(store, plan, options, report).await?;
    let group_ids = import_groups(store, plan, &perm_ids, options, report).await?;
    let Some(model) = plan.user_model.clone() else {
        return Ok(());
    };
    let context = Arc::new(Context {
        model: model.clone(),
        group_by_pk: plan.group_by_pk.clone(),
        perm_by_pk: plan.perm_by_pk.clone(),
        group_ids,
        perm_ids,
        unusable_unsupported: options.unusable_unsupported,
    });
    import_users(store, context, source, plan.users, options, report).await
}

/// Registers every permission the dump refers to that Gatehouse does not know yet; the ids of
/// all of them (built in, registered before, registered now) by codename.
async fn import_permissions(
    store: &DynamoStore,
    plan: &Plan,
    options: Options,
    report: &mut Report,
) -> Result<HashMap<String, String>, Fail> {
    report.permissions.total = plan.permissions.len();
    let mut valid = Vec::new();
    for (codename, p) in &plan.permissions {
        if Permission::valid_codename(codename) {
            valid.push(codename.clone());
        } else {
            let why =
                "Gatehouse takes app_label.action codenames (letters, digits and _, and - in the action; at most \
                       100 characters each): not registered, and no group or account is granted it";
            report.problem("permission", "auth.permission", p.pk.clone(), codename, false, why.to_owned());
        }
    }
    let mut ids = HashMap::new();
    for chunk in valid.chunks(BATCH) {
        for p in permissions::registry_in(store, chunk).await.map_err(service)? {
            ids.insert(p.codename, p.id);
        }
    }
    report.permissions.existing = ids.len();
    for codename in valid.iter().filter(|c| !ids.contains_key(*c)).cloned().collect::<Vec<_>>() {
        let Some(p) = plan.permissions.get(&codename) else { continue };
        if options.dry_run {
            ids.insert(codename, DRY_RUN_ID.to_owned());
            report.permissions.imported += 1;
            continue;
        }
        let permission = Permission {
            codename: codename.clone(),
            name: p.name.clone(),
            description: String::new(),
            id: random_id()?,
        };
        if permissions::register(store, &permission).await.map_err(service)? {
            report.permissions.imported += 1;
            let fields = [("name", json!(permission.name)), ("description", json!(permission.description))];
            let made = Event::new("admin.permission_created").object(&codename).changes(audit::changes(None, &fields));
            env::audit(store, made).await;
            ids.insert(codename, permission.id);
        } else {
            // Registered meanwhile by somebody else: that one counts.
            report.permissions.existing += 1;
            if let Some(p) = permissions::find_in(store, &codename).await.map_err(service)? {
                ids.insert(codename, p.id);
            }
        }
    }
    Ok(ids)
}

/// Makes the dump's groups that Gatehouse does not have; the ids of every group users may join
/// (made now, or existing and left as they are) by name.
async fn import_groups(
    store: &DynamoStore,
    plan: &Plan,
    perm_ids: &HashMap<String, String>,
    options: Options,
    report: &mut Report,
) -> Result<HashMap<String, String>, Fail> {
    let mut wanted: Vec<String> = plan.groups.iter().filter_map(|(_, n, _)| n.as_ref().ok().cloned()).collect();
    wanted.extend(plan.outside_groups.iter().cloned());
    wanted.retain(|n| Group::valid_name(n));
    wanted.sort();
    wanted.dedup();
    let mut existing: HashMap<String, Group> = HashMap::new();
    for chunk in wanted.chunks(BATCH) {
        for g in store.get_groups(chunk).await? {
            existing.insert(g.name.clone(), g);
        }
    }
    let mut ids = HashMap::new();
    report.groups.total = plan.groups.len();
    for (pk, name, codenames) in &plan.groups {
        let name = match name {
            Ok(name) if Group::valid_name(name) => name.clone(),
            Ok(name) => {
                let why = "Gatehouse takes group names of 1 to 150 characters, without control characters or /: \
                           not imported, and its members do not join it";
                report.problem("group", "auth.group", pk.clone(), name, false, why.to_owned());
                continue;
            }
            Err(why) => {
                report.problem("group", "auth.group", pk.clone(), "", false, why.clone());
                continue;
            }
        };
        if ids.contains_key(&name) {
            report.problem("group", "auth.group", pk.clone(), &name, false, "a second group of that name".to_owned());
            continue;
        }
        let permissions: Vec<String> = codenames.iter().filter(|c| perm_ids.contains_key(*c)).cloned().collect();
        if let Some(group) = existing.get(&name) {
            ids.insert(name.clone(), group.id.clone());
            let why = "a group of that name exists in Gatehouse already: left as it is (with its own permissions), \
                       and the dump's members join it";
            report.problem("group", "auth.group", pk.clone(), &name, true, why.to_owned());
            continue;
        }
        if options.dry_run {
            ids.insert(name, DRY_RUN_ID.to_owned());
            report.groups.imported += 1;
            continue;
        }
        let group = Group { name: name.clone(), description: String::new(), permissions, id: random_id()? };
        if store.put_group(&group, true).await? {
            report.groups.imported += 1;
            let fields = [("description", json!(group.description)), ("permissions", json!(group.permissions))];
            let made = Event::new("admin.group_created").object(&name).changes(audit::changes(None, &fields));
            env::audit(store, made).await;
            ids.insert(name, group.id);
        } else {
            // Made meanwhile by somebody else: as any existing group.
            if let Some(g) = store.get_groups(std::slice::from_ref(&name)).await?.pop() {
                ids.insert(name.clone(), g.id);
            }
            let why =
                "a group of that name was made in Gatehouse meanwhile: left as it is, and the dump's members join it";
            report.problem("group", "auth.group", pk.clone(), &name, true, why.to_owned());
        }
    }
    for name in &plan.outside_groups {
        report.groups.total += 1;
        match existing.get(name) {
            Some(g) => {
                ids.insert(name.clone(), g.id.clone());
            }
            None => {
                let why = "users are members of it, but it is neither in the dump nor in Gatehouse: dump auth.group \
                           too; its members were imported without it";
                report.problem("group", "auth.group", Value::Null, name, false, why.to_owned());
            }
        }
    }
    Ok(ids)
}

/// What turning a user record into an account needs.
struct Context {
    model: String,
    group_by_pk: HashMap<String, String>,
    perm_by_pk: HashMap<String, String>,
    /// Every group an account may join, by name.
    group_ids: HashMap<String, String>,
    /// Every permission an account may be granted, by codename.
    perm_ids: HashMap<String, String>,
    unusable_unsupported: bool,
}

/// An account to write, with what the report says of it.
struct Planned {
    user: User,
    notes: Vec<String>,
}

/// The algorithm a Django hash names (`md5`, `sha1`, ...), never any of the hash itself.
fn algorithm(stored: &str) -> &str {
    match stored.split_once('$') {
        Some((name, _))
            if !name.is_empty() && name.len() <= 32 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            name
        }
        _ => "an unrecognised format",
    }
}

/// The account a user record becomes, or why it cannot be one.
fn plan_user(record: &Record, cx: &Context, now: i64) -> Result<Planned, String> {
    let mut notes = Vec::new();
    let raw_email = record.text("email")?.map(str::trim).unwrap_or_default();
    if raw_email.is_empty() {
        return Err("no email address: Gatehouse accounts are found by their address".to_owned());
    }
    let email = Email::parse(raw_email).map_err(|msg| format!("email {raw_email:?}: {msg}"))?;
    let username = match record.text("username")?.filter(|u| !u.is_empty()) {
        Some(raw) => match Username::parse(raw) {
            Ok(u) => Some(u),
            Err(msg) => {
                notes.push(format!("imported without its username {raw:?}: {msg}"));
                None
            }
        },
        None => None,
    };
    let Some(stored) = record.text("password")? else {
        return Err("no password field".to_owned());
    };
    let format: HashFormat = stored_hash_format(stored);
    let password_hash = if format.verifiable() || matches!(format, HashFormat::Unusable) {
        stored.to_owned()
    } else if cx.unusable_unsupported {
        let random = gatehouse_core::secrets::random_token().map_err(|e| format!("random: {e}"))?;
        notes.push(format!(
            "imported with an unusable password: its password hash ({}) is one Gatehouse does not verify; it signs in \
             after a password reset",
            algorithm(stored)
        ));
        format!("!{random}")
    } else {
        return Err(format!(
            "its password hash ({}) is one Gatehouse does not verify: it would never sign in with its password \
             (--unusable-unsupported imports it with an unusable one, to be reset)",
            algorithm(stored)
        ));
    };
    let first_name = record.text("first_name")?.unwrap_or_default().to_owned();
    let last_name = record.text("last_name")?.unwrap_or_default().to_owned();
    let is_active = record.flag("is_active", true)?;
    let is_staff = record.flag("is_staff", false)?;
    let is_superuser = record.flag("is_superuser", false)?;
    let date = |name: &str| -> Result<Option<i64>, String> {
        match record.text(name)? {
            None => Ok(None),
            Some(raw) => {
                parse_datetime(raw).map(Some).ok_or_else(|| format!("{name} {raw:?}: not an ISO 8601 date-time"))
            }
        }
    };
    let date_joined = date("date_joined")?.unwrap_or(now);
    let last_login = date("last_login")?;

    let mut groups = Vec::new();
    let mut group_ids = BTreeMap::new();
    for r in record.list("groups")? {
        let name = match GroupRef::read(r)? {
            GroupRef::Name(name) => name,
            GroupRef::Pk(pk) => {
                cx.group_by_pk.get(&pk).cloned().ok_or_else(|| format!("groups: no group has pk {pk}"))?
            }
        };
        match cx.group_ids.get(&name) {
            Some(id) if !group_ids.contains_key(&name) => {
                group_ids.insert(name.clone(), id.clone());
                groups.push(name);
            }
            Some(_) => {}
            None => notes.push(format!("not made a member of {name:?}: that group was not imported")),
        }
    }
    let mut user_permissions = BTreeMap::new();
    for r in record.list("user_permissions")? {
        let codename = match PermRef::read("user_permissions", r)? {
            PermRef::Natural { app_label, codename } => gatehouse_codename(&app_label, &codename),
            PermRef::Pk(pk) => {
                cx.perm_by_pk.get(&pk).cloned().ok_or_else(|| format!("user_permissions: no permission has pk {pk}"))?
            }
        };
        match cx.perm_ids.get(&codename) {
            Some(id) => {
                user_permissions.insert(codename, id.clone());
            }
            None => notes.push(format!("not granted {codename}: that permission was not registered")),
        }
    }
    let user = User {
        id: UserId::generate(),
        email,
        username,
        first_name,
        last_name,
        password_hash,
        is_active,
        is_staff,
        is_superuser,
        groups,
        group_ids,
        date_joined,
        last_login,
        tokens_valid_after: now,
        version: 1,
        expires_at: None,
        deactivated_at: None,
        user_permissions,
        mfa_enabled: false,
        language: None,
    };
    Ok(Planned { user, notes })
}

/// `\r{done}/{total}` on stderr while it is a terminal.
struct Progress {
    on: bool,
    done: usize,
    total: usize,
    shown: Option<Instant>,
}

impl Progress {
    fn tick(&mut self) {
        self.done += 1;
        if self.on && (self.done == self.total || self.shown.is_none_or(|t| t.elapsed() >= Duration::from_millis(100)))
        {
            eprint!("\rusers: {}/{}", self.done, self.total);
            self.shown = Some(Instant::now());
        }
    }

    fn finish(&self) {
        if self.on && self.shown.is_some() {
            eprintln!();
        }
    }
}

/// How many accounts are written at the same time: [`WRITERS`], but one at a time against the
/// local emulator, which answers one request at a time (more would only queue there, and the
/// audit entries' one-second deadline would pass).
fn writers() -> usize {
    if env::local_endpoint().is_some() {
        1
    } else {
        WRITERS
    }
}

/// A user record on its way: where it is in the dump, how the report names it.
struct Pending {
    position: usize,
    pk: Value,
    key: String,
    notes: Vec<String>,
}

/// What writing one account came to.
enum Written {
    Imported,
    Skipped(String),
}

async fn write_user(store: DynamoStore, user: User) -> Result<Written, StoreError> {
    match store.create_user(&user, None, now()).await {
        Ok(()) => {
            env::audit(&store, Event::new("admin.user_created").to(&user.id).changes(audit::created(&user))).await;
            Ok(Written::Imported)
        }
        Err(CreateUserError::EmailTaken) => {
            Ok(Written::Skipped("an account with this address exists in Gatehouse already: left as it is".to_owned()))
        }
        Err(CreateUserError::UsernameTaken) => Ok(Written::Skipped(format!(
            "the username {:?} is another Gatehouse account's (usernames are unique case-insensitively)",
            user.username.as_ref().map(|u| u.as_str()).unwrap_or_default()
        ))),
        Err(CreateUserError::IdentityTaken) => Err(StoreError::new("identity claim conflict without an identity")),
        Err(CreateUserError::Store(e)) => Err(e),
    }
}

/// The second pass: each user record, planned and written as it is read.
async fn import_users(
    store: &DynamoStore,
    cx: Arc<Context>,
    source: &Source,
    total: usize,
    options: Options,
    report: &mut Report,
) -> Result<(), Fail> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, Record)>(64);
    let reader = {
        let (source, model) = (source.clone(), cx.model.clone());
        tokio::task::spawn_blocking(move || {
            each_record(&source, |position, record| {
                if record.model != model {
                    return Ok(());
                }
                tx.blocking_send((position, record)).map_err(|_| "stopped".to_owned())
            })
        })
    };
    let mut progress = Progress { on: std::io::stderr().is_terminal(), done: 0, total, shown: None };
    // Addresses and usernames of this dump so far: a second record with one is skipped (Django's
    // auth.user does not make addresses unique; Gatehouse does, case-insensitively).
    let mut emails: HashMap<String, Value> = HashMap::new();
    let mut usernames: HashMap<String, Value> = HashMap::new();
    let mut writing: tokio::task::JoinSet<(Pending, Result<Written, StoreError>)> = tokio::task::JoinSet::new();
    let mut failure: Option<Fail> = None;
    let writers = writers();
    let now = now();
    let model = cx.model.clone();

    let settle = |report: &mut Report, pending: Pending, written: Written| match written {
        Written::Imported => {
            report.users.imported += 1;
            for note in pending.notes {
                report.notes.push(Entry {
                    kind: "user",
                    model: model.clone(),
                    pk: pending.pk.clone(),
                    key: pending.key.clone(),
                    outcome: "note",
                    reason: note,
                    position: pending.position,
                });
            }
        }
        Written::Skipped(why) => {
            report.problem("user", &model, pending.pk, &pending.key, true, why);
            if let Some(e) = report.problems.last_mut() {
                e.position = pending.position;
            }
        }
    };

    while let Some((position, record)) = rx.recv().await {
        if failure.is_some() {
            break;
        }
        let key = record.text("email").ok().flatten().or(record.text("username").ok().flatten()).unwrap_or("");
        let pk = record.pk();
        let planned = plan_user(&record, &cx, now);
        let Planned { user, notes } = match planned {
            Ok(p) => p,
            Err(why) => {
                report.problem("user", &model, pk, key, false, why);
                if let Some(e) = report.problems.last_mut() {
                    e.position = position;
                }
                progress.tick();
                continue;
            }
        };
        let pending = Pending { position, pk: pk.clone(), key: user.email.as_str().to_owned(), notes };
        let twin = match emails.get(user.email.normalised()) {
            Some(other) => Some(format!("the address is also that of {model} pk {other} earlier in the dump")),
            None => user.username.as_ref().and_then(|u| usernames.get(&u.key())).map(|other| {
                format!("the username is also that of {model} pk {other} earlier in the dump (case-insensitively)")
            }),
        };
        if let Some(why) = twin {
            settle(report, pending, Written::Skipped(why));
            progress.tick();
            continue;
        }
        emails.insert(user.email.normalised().to_owned(), pk.clone());
        if let Some(u) = &user.username {
            usernames.insert(u.key(), pk);
        }
        if options.dry_run {
            let written = match store.find_user_by_email(&user.email, now).await {
                Ok(Some(_)) => Written::Skipped("an account with this address exists in Gatehouse already".to_owned()),
                Ok(None) => Written::Imported,
                Err(e) => {
                    failure = Some(e.into());
                    break;
                }
            };
            settle(report, pending, written);
            progress.tick();
            continue;
        }
        if writing.len() >= writers {
            if let Some(done) = writing.join_next().await {
                match done {
                    Ok((pending, Ok(written))) => settle(report, pending, written),
                    Ok((_, Err(e))) => failure = Some(e.into()),
                    Err(e) => failure = Some(Fail::runtime(format!("writing an account: {e}"))),
                }
                progress.tick();
            }
        }
        let store = store.clone();
        writing.spawn(async move {
            let result = write_user(store, user).await;
            (pending, result)
        });
    }
    drop(rx);
    while let Some(done) = writing.join_next().await {
        match done {
            Ok((pending, Ok(written))) => settle(report, pending, written),
            Ok((_, Err(e))) => {
                failure.get_or_insert(e.into());
            }
            Err(e) => {
                failure.get_or_insert(Fail::runtime(format!("writing an account: {e}")));
            }
        }
        progress.tick();
    }
    progress.finish();
    let read = reader.await.map_err(|e| Fail::runtime(format!("reading the dump: {e}")))?;
    if let Some(mut fail) = failure {
        let imported = report.users.imported;
        fail.lines.push(format!(
            "{imported} account{} imported before the error; run the same import again to go on (existing addresses \
             are skipped)",
            plural(imported)
        ));
        return Err(fail);
    }
    read.map_err(|e| {
        let mut fail = read_failure(source, e);
        fail.code = crate::EXIT_RUNTIME;
        fail.lines.push("the dump changed while it was imported: run the import again".to_owned());
        fail
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_datetimes_are_read_as_its_serializer_writes_them() {
        let cases = [
            ("2024-05-01T10:20:30Z", Some(1_714_558_830)),
            ("2024-05-01T10:20:30.123Z", Some(1_714_558_830)),
            ("2024-05-01T10:20:30.123456+00:00", Some(1_714_558_830)),
            ("2024-05-01T12:20:30.5+02:00", Some(1_714_558_830)),
            ("2024-05-01T05:50:30-0430", Some(1_714_558_830)),
            ("2024-05-01T10:20:30", Some(1_714_558_830)),
            ("2024-05-01 10:20:30", Some(1_714_558_830)),
            ("2024-05-01T10:20", Some(1_714_558_800)),
            ("2024-05-01", Some(1_714_521_600)),
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1969-12-31T23:59:59Z", Some(-1)),
            ("2000-02-29T00:00:00Z", Some(951_782_400)),
            ("2023-02-29T00:00:00Z", None),
            ("2024-13-01T00:00:00Z", None),
            ("2024-05-01T24:00:00Z", None),
            ("2024-05-01T10:20:30.Z", None),
            ("2024-05-01T10:20:30Zjunk", None),
            ("2024-05-01T10:20:30+2", None),
            ("yesterday", None),
            ("", None),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_datetime(raw), want, "{raw}");
        }
    }

    #[test]
    fn only_the_algorithm_of_a_hash_is_ever_named() {
        assert_eq!(algorithm("md5$salt$0123456789abcdef"), "md5");
        assert_eq!(algorithm("0123456789abcdef0123456789abcdef"), "an unrecognised format");
        assert_eq!(algorithm("$weird$x"), "an unrecognised format");
        assert_eq!(algorithm("has space$x"), "an unrecognised format");
    }

    #[test]
    fn references_are_natural_keys_or_primary_keys() {
        assert!(GroupRef::read(&json!(["support"])) == Ok(GroupRef::Name("support".into())));
        assert!(GroupRef::read(&json!(3)) == Ok(GroupRef::Pk("3".into())));
        assert!(GroupRef::read(&json!({"name": "x"})).is_err());
        assert!(GroupRef::read(&json!(["a", "b"])).is_err());
        let natural = PermRef::read("permissions", &json!(["refund", "shop", "order"]));
        assert!(natural == Ok(PermRef::Natural { app_label: "shop".into(), codename: "refund".into() }));
        assert!(PermRef::read("permissions", &json!(["refund", "shop"])).is_err());
        assert!(PermRef::read("permissions", &json!("7")) == Ok(PermRef::Pk("7".into())));
    }

    #[test]
    fn user_models_are_named_as_app_label_dot_model() {
        assert_eq!(user_model_arg(" Accounts.User ").ok(), Some("accounts.user".to_owned()));
        assert!(user_model_arg("accounts").is_err());
        assert!(user_model_arg("a.b.c").is_err());
        assert!(user_model_arg("auth.group").is_err());
    }
}
