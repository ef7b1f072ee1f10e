//! A small argument parser: `--name value`, `--name=value`, switches, `-h` / `--help`, and the
//! operands of a command that takes some (`import-django FILE`; `-` is an operand, `--` ends the
//! options). Every command declares its options; anything else is a usage error.

use std::collections::HashMap;

/// One option a command accepts.
pub struct Opt {
    /// Long name without the dashes.
    pub name: &'static str,
    /// Placeholder of its value (`EMAIL`), or `None` for a switch.
    pub value: Option<&'static str>,
    pub help: &'static str,
}

/// Parsed options of one command.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<&'static str, String>,
    switches: Vec<&'static str>,
    /// The words that are not options, in order (at most as many as the command takes).
    pub operands: Vec<String>,
    pub help: bool,
}

impl Args {
    /// The value given to `--name`, if any.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether the switch `--name` was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.contains(&name)
    }
}

/// Parses `argv` (the words after the command name) against `opts`, no operands allowed. The
/// error is one line. (The commands go through [`parse_with_operands`]; the tests use this.)
#[cfg(test)]
pub fn parse(argv: &[String], opts: &'static [Opt]) -> Result<Args, String> {
    parse_with_operands(argv, opts, 0)
}

/// [`parse`], taking up to `max_operands` words that are not options (`-` is one; after `--`,
/// every word is one).
pub fn parse_with_operands(argv: &[String], opts: &'static [Opt], max_operands: usize) -> Result<Args, String> {
    let mut args = Args::default();
    let mut words = argv.iter();
    let mut options_ended = false;
    while let Some(word) = words.next() {
        if !options_ended && word == "--" && max_operands > 0 {
            options_ended = true;
            continue;
        }
        if !options_ended && (word == "-h" || word == "--help") {
            args.help = true;
            continue;
        }
        let body = match word.strip_prefix("--") {
            Some(body) if !options_ended => body,
            _ if args.operands.len() < max_operands => {
                args.operands.push(word.clone());
                continue;
            }
            _ => return Err(format!("unexpected argument '{word}' (options start with --)")),
        };
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_owned())),
            None => (body, None),
        };
        let Some(opt) = opts.iter().find(|o| o.name == name) else {
            return Err(format!("unknown option '--{name}'"));
        };
        match opt.value {
            Some(_) => {
                let value = match inline {
                    Some(v) => v,
                    None => match words.next() {
                        Some(v) => v.clone(),
                        None => return Err(format!("option '--{name}' needs a value")),
                    },
                };
                if args.values.insert(opt.name, value).is_some() {
                    return Err(format!("option '--{name}' given twice"));
                }
            }
            None => {
                if inline.is_some() {
                    return Err(format!("option '--{name}' takes no value"));
                }
                args.switches.push(opt.name);
            }
        }
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: &[Opt] =
        &[Opt { name: "email", value: Some("EMAIL"), help: "" }, Opt { name: "json", value: None, help: "" }];

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn parses_values_switches_and_help() {
        let a = parse(&words(&["--email", "a@b.co", "--json"]), OPTS).unwrap();
        assert_eq!(a.value("email"), Some("a@b.co"));
        assert!(a.switch("json"));
        assert!(!a.help);
        let a = parse(&words(&["--email=x=y", "-h"]), OPTS).unwrap();
        assert_eq!(a.value("email"), Some("x=y"));
        assert!(a.help);
        assert!(!a.switch("json"));
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        assert!(parse(&words(&["--nope"]), OPTS).unwrap_err().contains("unknown option '--nope'"));
        assert!(parse(&words(&["--email"]), OPTS).unwrap_err().contains("needs a value"));
        assert!(parse(&words(&["stray"]), OPTS).unwrap_err().contains("unexpected argument"));
        assert!(parse(&words(&["--json=1"]), OPTS).unwrap_err().contains("takes no value"));
        assert!(parse(&words(&["--email", "a", "--email", "b"]), OPTS).unwrap_err().contains("twice"));
        assert!(parse(&words(&["-"]), OPTS).unwrap_err().contains("unexpected argument"));
    }

    #[test]
    fn takes_operands_only_where_the_command_does() {
        let a = parse_with_operands(&words(&["dump.json", "--json"]), OPTS, 1).unwrap();
        assert_eq!((a.operands.as_slice(), a.switch("json")), (&["dump.json".to_owned()][..], true));
        let a = parse_with_operands(&words(&["--json", "-"]), OPTS, 1).unwrap();
        assert_eq!(a.operands, ["-"]);
        let a = parse_with_operands(&words(&["--json", "--", "--help"]), OPTS, 1).unwrap();
        assert_eq!((a.operands.as_slice(), a.help), (&["--help".to_owned()][..], false));
        assert!(parse_with_operands(&words(&["a", "b"]), OPTS, 1).unwrap_err().contains("unexpected argument 'b'"));
        assert!(parse_with_operands(&words(&[]), OPTS, 1).unwrap().operands.is_empty());
    }
}
