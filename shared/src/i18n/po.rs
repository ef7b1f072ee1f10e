//! A strict reader of gettext `.po` / `.pot` files (the subset translators' tools write: comments,
//! flags, `msgctxt`, `msgid`, `msgid_plural`, `msgstr`, `msgstr[n]`, continued strings and C
//! escapes). Plain `std` only: the build script compiles this same file to refuse a broken catalog
//! at build time, naming its line.
//!
//! Why not a crate: polib 0.3 (the maintained PO crate) slices each line without checking it (a
//! lone `"` line panics), skips lines it does not understand in silence and reports no line
//! numbers; a catalog a team adds must fail with its line, never be half read.

/// One message of a catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub context: Option<String>,
    pub msgid: String,
    pub msgid_plural: Option<String>,
    /// `msgstr`, or `msgstr[0..n]` for a plural entry.
    pub msgstr: Vec<String>,
    pub fuzzy: bool,
    /// `#, python-format` and the like.
    pub flags: Vec<String>,
    /// The line its `msgid` is on.
    pub line: usize,
}

/// A parsed file: the header entry (`msgid ""`) split into fields, then the messages.
#[derive(Clone, Debug, Default)]
pub struct PoFile {
    pub headers: Vec<(String, String)>,
    pub entries: Vec<Entry>,
}

impl PoFile {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    None,
    Context,
    Id,
    IdPlural,
    Str(usize),
}

/// Parses `src`; the error is `(line, reason)`.
pub fn parse(src: &str) -> Result<PoFile, (usize, String)> {
    let mut file = PoFile::default();
    let mut cur = Entry::default();
    let mut field = Field::None;
    let mut started = false;
    let mut flags: Vec<String> = Vec::new();
    for (i, raw) in src.lines().enumerate() {
        let line_no = i + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("#,") {
            // Flags (`fuzzy`, `python-format`) belong to the entry that opens next.
            flags.extend(rest.split(',').map(|f| f.trim().to_owned()).filter(|f| !f.is_empty()));
            continue;
        }
        if line.starts_with('#') {
            // Comments, references and obsolete (`#~`) entries: kept by tools, never used.
            continue;
        }
        if line.starts_with('"') {
            if field == Field::None {
                return Err((line_no, "a string continues nothing (it must follow msgid, msgstr ...)".into()));
            }
            let s = unquote(line).map_err(|why| (line_no, why))?;
            target(&mut cur, field).push_str(&s);
            continue;
        }
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let value = unquote(rest.trim()).map_err(|why| (line_no, format!("{keyword}: {why}")))?;
        let next = match keyword {
            "msgctxt" => Field::Context,
            "msgid" => Field::Id,
            "msgid_plural" => Field::IdPlural,
            "msgstr" => Field::Str(0),
            k => match k.strip_prefix("msgstr[").and_then(|r| r.strip_suffix(']')).and_then(|n| n.parse().ok()) {
                Some(n) => Field::Str(n),
                None => return Err((line_no, format!("unknown keyword `{k}`"))),
            },
        };
        // A new entry starts at msgctxt, or at msgid unless msgctxt just opened it.
        let opens = matches!(next, Field::Context) || (next == Field::Id && field != Field::Context);
        if opens {
            if started {
                finish(&mut file, &mut cur, line_no)?;
            }
            started = true;
            cur = Entry { line: line_no, flags: std::mem::take(&mut flags), ..Entry::default() };
            cur.fuzzy = cur.flags.iter().any(|f| f == "fuzzy");
        }
        if !started {
            return Err((line_no, format!("{keyword} before any msgid")));
        }
        match next {
            Field::Id => cur.line = line_no,
            Field::IdPlural if field != Field::Id => {
                return Err((line_no, "msgid_plural must follow msgid".into()));
            }
            Field::Str(n) => {
                let plural = cur.msgid_plural.is_some();
                let indexed = keyword != "msgstr";
                if plural != indexed {
                    return Err((
                        line_no,
                        if plural { "a plural entry takes msgstr[n]" } else { "msgstr[n] needs a msgid_plural" }.into(),
                    ));
                }
                if n != cur.msgstr.len() {
                    return Err((line_no, format!("msgstr[{n}] out of order")));
                }
                cur.msgstr.push(String::new());
            }
            _ => {}
        }
        field = next;
        let slot = target(&mut cur, field);
        if !slot.is_empty() {
            return Err((line_no, format!("{keyword} given twice")));
        }
        slot.push_str(&value);
    }
    if started {
        finish(&mut file, &mut cur, src.lines().count())?;
    }
    Ok(file)
}

fn target(e: &mut Entry, field: Field) -> &mut String {
    match field {
        Field::Context => e.context.get_or_insert_with(String::new),
        Field::Id | Field::None => &mut e.msgid,
        Field::IdPlural => e.msgid_plural.get_or_insert_with(String::new),
        Field::Str(_) => {
            if e.msgstr.is_empty() {
                e.msgstr.push(String::new());
            }
            let last = e.msgstr.len() - 1;
            &mut e.msgstr[last]
        }
    }
}

fn finish(file: &mut PoFile, cur: &mut Entry, line_no: usize) -> Result<(), (usize, String)> {
    let entry = std::mem::take(cur);
    if entry.msgstr.is_empty() {
        return Err((entry.line, format!("msgid without msgstr (before line {line_no})")));
    }
    if entry.msgid.is_empty() && entry.context.is_none() {
        if !file.headers.is_empty() || !file.entries.is_empty() {
            return Err((entry.line, "the header (msgid \"\") must come first, once".into()));
        }
        for h in entry.msgstr[0].lines().filter(|l| !l.trim().is_empty()) {
            let (k, v) = h.split_once(':').ok_or((entry.line, format!("header line without `:`: {h}")))?;
            file.headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        return Ok(());
    }
    if file.entries.iter().any(|e| e.msgid == entry.msgid && e.context == entry.context) {
        return Err((entry.line, format!("msgid {:?} given twice", entry.msgid)));
    }
    file.entries.push(entry);
    Ok(())
}

/// A C-quoted string: `"..."` with `\\ \" \n \t \r` escapes.
fn unquote(s: &str) -> Result<String, String> {
    let inner = s
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|_| s.len() >= 2)
        .ok_or_else(|| format!("expected a quoted string, found {s:?}"))?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                other => return Err(format!("unknown escape \\{}", other.map(String::from).unwrap_or_default())),
            },
            '"' => return Err("an unescaped \" inside the string".into()),
            c => out.push(c),
        }
    }
    Ok(out)
}
