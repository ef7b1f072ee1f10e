use std::fmt;

/// An email address as typed (domain lower-cased, as Django's `normalize_email` does) together
/// with its normalised form, which is what uniqueness is decided on (case-insensitive).
#[derive(Clone, PartialEq, Eq)]
pub struct Email {
    display: String,
    normalised: String,
}

/// Longest address accepted (RFC 5321 path limit, and Django's EmailField).
pub const MAX_EMAIL_LEN: usize = 254;

impl Email {
    /// Parses and normalises an address; the error is the DRF message.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        const INVALID: &str = "Enter a valid email address.";
        let raw = raw.trim();
        if raw.is_empty() || raw.len() > MAX_EMAIL_LEN {
            return Err(INVALID);
        }
        let (local, domain) = raw.rsplit_once('@').ok_or(INVALID)?;
        if !valid_local(local) || !valid_domain(domain) {
            return Err(INVALID);
        }
        let display = format!("{local}@{}", domain.to_ascii_lowercase());
        let normalised = display.to_ascii_lowercase();
        Ok(Self { display, normalised })
    }

    /// The address as the user typed it (domain lower-cased).
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The case-folded key used for uniqueness and lookups.
    pub fn normalised(&self) -> &str {
        &self.normalised
    }
}

fn valid_local(local: &str) -> bool {
    const SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-";
    !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || SPECIALS.contains(c))
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_alphabetic()) && tld.len() >= 2)
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.display)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.display)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_case_for_uniqueness_and_keeps_the_local_part() {
        let e = Email::parse("  Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Ada.Lovelace@example.com");
        assert_eq!(e.normalised(), "ada.lovelace@example.com");
        assert_eq!(Email::parse("ADA.LOVELACE@example.com").unwrap().normalised(), e.normalised());
    }

    #[test]
    fn rejects_what_django_rejects() {
        for bad in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@@b.com",
            "a b@c.com",
            "a@b..com",
            ".a@b.com",
            "a.@b.com",
            "a..b@c.com",
            "a@-b.com",
            "a@b.c0m",
            "a\0@b.com",
            "a@b.com\r\nBcc: x@y.com",
            "ä@b.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).is_err());
    }

    #[test]
    fn accepts_ordinary_addresses() {
        for good in ["a@b.co", "first.last+tag@sub.example.org", "o'brien@example.ie", "x_y-z@a-b.example"] {
            assert!(Email::parse(good).is_ok(), "{good:?} should be accepted");
        }
    }
}
