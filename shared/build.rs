//! Embeds every message catalog `locale/<lang>.po` (a team adds a language by adding a file) and
//! refuses a broken one here, at build time, with its file and line.

#[path = "src/i18n/plural.rs"]
#[allow(dead_code)]
mod plural;
#[path = "src/i18n/po.rs"]
#[allow(dead_code)]
mod po;

use std::fmt::Write as _;
use std::path::Path;

fn main() -> Result<(), String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("locale");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut langs = Vec::new();
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        println!("cargo:rerun-if-changed={}", path.display());
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let src = std::fs::read_to_string(&path).map_err(|e| format!("{name}: {e}"))?;
        let parsed = po::parse(&src).map_err(|(line, why)| format!("locale/{name} line {line}: {why}"))?;
        let Some(lang) = name.strip_suffix(".po") else { continue };
        if lang.is_empty() || !lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(format!("locale/{name}: name it after its language (fr.po, pt-br.po)"));
        }
        if let Some(rule) = parsed.header("Plural-Forms") {
            plural::Rule::parse(rule).map_err(|why| format!("locale/{name}: {why}"))?;
        }
        langs.push((lang.to_ascii_lowercase().replace('_', "-"), path));
    }
    langs.sort();
    let mut out = String::from(
        "/// (language, contents) of every catalog under shared/locale.\npub const EMBEDDED: &[(&str, &str)] = &[\n",
    );
    for (lang, path) in &langs {
        let _ = writeln!(out, "    ({lang:?}, include_str!({:?})),", path.display().to_string());
    }
    out.push_str("];\n");
    let target = Path::new(&std::env::var("OUT_DIR").map_err(|e| e.to_string())?).join("locales.rs");
    std::fs::write(&target, out).map_err(|e| format!("{}: {e}", target.display()))
}
