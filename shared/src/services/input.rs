//! Request fields as the edge parsed them (JSON object or form), read DRF-style.

use serde_json::{Map, Value};

use super::FieldErrors;

pub const REQUIRED: &str = "This field is required.";
pub const BLANK: &str = "This field may not be blank.";
pub const NULL: &str = "This field may not be null.";
pub const NOT_STRING: &str = "Not a valid string.";
/// DRF's `ProhibitNullCharactersValidator`, which every CharField carries.
pub const NUL_CHARACTERS: &str = "Null characters are not allowed.";

/// The fields of a request body.
#[derive(Clone, Debug, Default)]
pub struct Form(pub Map<String, Value>);

impl Form {
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.to_owned(), Value::String(v.to_owned()))).collect())
    }

    pub fn contains(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// A string field as DRF's CharField reads it: numbers are accepted as text, other types
    /// are not, and neither are NUL characters. `Ok(None)` when absent.
    fn raw(&self, field: &str, errors: &mut FieldErrors, allow_null: bool) -> Option<Option<String>> {
        match self.0.get(field) {
            None => Some(None),
            Some(Value::String(s)) if s.contains('\0') => {
                errors.add(field, NUL_CHARACTERS);
                None
            }
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(Value::Number(n)) => Some(Some(n.to_string())),
            Some(Value::Null) if allow_null => Some(None),
            Some(Value::Null) => {
                errors.add(field, NULL);
                None
            }
            Some(_) => {
                errors.add(field, NOT_STRING);
                None
            }
        }
    }

    /// A required, non-blank string; records the error and returns `None` otherwise.
    pub fn required(&self, field: &str, errors: &mut FieldErrors) -> Option<String> {
        match self.raw(field, errors, false)? {
            None => {
                errors.add(field, REQUIRED);
                None
            }
            Some(s) if s.trim().is_empty() => {
                errors.add(field, BLANK);
                None
            }
            Some(s) => Some(s),
        }
    }

    /// A required email address (the only field of resend / reset requests).
    pub fn email(&self, field: &str) -> Result<crate::domain::Email, super::ServiceError> {
        let mut errors = FieldErrors::default();
        let raw = self.required(field, &mut errors);
        errors.finish()?;
        let raw = raw.ok_or_else(|| FieldErrors::single(field, REQUIRED))?;
        crate::domain::Email::parse(&raw).map_err(|msg| FieldErrors::single(field, msg))
    }

    /// An optional string (blank allowed, null treated as absent); `max_chars` enforced.
    /// The `language` field (a user's email language): `Some(Some(code))` for a language
    /// Gatehouse speaks (as it spells it: `fr`, `pt-br`), `Some(None)` for `""` (back to
    /// `LANGUAGE_CODE`), `None` when absent or refused (`"xx" is not a valid choice.`).
    pub fn language(&self, errors: &mut FieldErrors) -> Option<Option<String>> {
        let raw = self.optional("language", 35, errors)?;
        if raw.is_empty() {
            return Some(None);
        }
        match crate::i18n::known(&raw) {
            Some(code) => Some(Some(code.to_owned())),
            None => {
                errors.add("language", format!("\"{raw}\" is not a valid choice."));
                None
            }
        }
    }

    pub fn optional(&self, field: &str, max_chars: usize, errors: &mut FieldErrors) -> Option<String> {
        let s = self.raw(field, errors, true)??;
        if s.chars().count() > max_chars {
            errors.add(field, format!("Ensure this field has no more than {max_chars} characters."));
            return None;
        }
        Some(s)
    }
}
