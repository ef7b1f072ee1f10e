//! What the check knows of the table: one scan (or the few items read again), classified, and the
//! inconsistencies it shows.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;

use super::{Counts, Outcome, Problem, ProblemKind};
use crate::store::dynamo::schema::{
    email_pk_normalised, get_opt_n, get_opt_s, list_entry, s, user_pk, username_pk, Item, ItemKind, EMAIL,
    EMAIL_PREFIX, LIST_PK, LIST_SK, PROFILE, USERNAME, USERNAME_PREFIX, USER_PREFIX,
};

/// A user as the check needs it.
#[derive(Clone, Debug)]
pub(super) struct UserRow {
    /// The normalised address.
    pub(super) email: String,
    /// The username's key (lowercase).
    pub(super) username: Option<String>,
    pub(super) expires_at: Option<i64>,
    pub(super) version: u64,
}

#[derive(Clone, Debug)]
struct ClaimRow {
    user_id: String,
}

/// A user or group item whose `list_pk` / `list_sk` are not what its keys say they must be.
#[derive(Clone, Debug)]
pub(super) struct Unlisted {
    pub(super) pk: String,
    pub(super) sk: String,
    /// The user's id (None for a group).
    pub(super) user_id: Option<String>,
    /// `list_pk` and `list_sk` as read (None: absent).
    pub(super) seen: [Option<AttributeValue>; 2],
}

/// The item's list index entry, unless it is the one its keys call for.
fn unlisted(item: &Item, pk: &str, sk: &str) -> Option<Unlisted> {
    let (list, list_sk) = list_entry(pk, sk)?;
    let seen = [item.get(LIST_PK).cloned(), item.get(LIST_SK).cloned()];
    if seen == [Some(s(list)), Some(s(list_sk))] {
        return None;
    }
    let user_id = (sk == PROFILE).then(|| list_sk.to_owned());
    Some(Unlisted { pk: pk.to_owned(), sk: sk.to_owned(), user_id, seen })
}

/// What the check knows of the table (or of the few items read again).
#[derive(Default)]
pub(super) struct Snapshot {
    /// Live users, by id.
    pub(super) users: HashMap<String, UserRow>,
    expired_users: HashSet<String>,
    emails: HashMap<String, ClaimRow>,
    usernames: HashMap<String, ClaimRow>,
    /// Codes and sessions: (pk, sk, user id, is a session).
    dependents: Vec<(String, String, String, bool)>,
    /// Expired items: (pk, sk, kind).
    pub(super) expired: Vec<(String, String, &'static str)>,
    /// Live users and groups without the right list index keys.
    pub(super) unlisted: Vec<Unlisted>,
    malformed: Vec<(String, String, String)>,
    pub(super) counts: Counts,
}

fn user_row(item: &Item) -> Result<UserRow, String> {
    let email = match (get_opt_s(item, "email_normalised"), get_opt_s(item, "email")) {
        (Some(e), _) => e,
        (None, Some(e)) => e.to_ascii_lowercase(),
        (None, None) => return Err("user without an email".into()),
    };
    let version = get_opt_n(item, "version").ok().flatten().ok_or("user without a numeric version")?;
    let expires_at = get_opt_n(item, "expires_at").map_err(|_| "expires_at is not a number")?;
    Ok(UserRow { email, username: get_opt_s(item, "username").map(|u| u.to_lowercase()), expires_at, version })
}

fn claim_row(item: &Item) -> Result<ClaimRow, String> {
    let user_id = get_opt_s(item, "user_id").ok_or("claim without a user_id")?;
    Ok(ClaimRow { user_id })
}

/// How the report names a kind of item (the keys of its `expired` counts).
fn label(kind: ItemKind) -> &'static str {
    match kind {
        ItemKind::User => "user",
        ItemKind::EmailClaim => "email claim",
        ItemKind::UsernameClaim => "username claim",
        ItemKind::Code => "code",
        ItemKind::Session => "session",
        ItemKind::RateCounter => "rate counter",
        ItemKind::Group => "group",
        ItemKind::Permission => "permission",
        ItemKind::Audit => "audit entry",
        ItemKind::Mfa => "second factor",
        ItemKind::Challenge => "challenge",
        ItemKind::Identity => "identity link",
        ItemKind::Other => "other",
    }
}

impl Snapshot {
    /// Classifies one item (as scanned or read again) at `now`.
    pub(super) fn add(&mut self, item: &Item, now: i64) {
        self.counts.items += 1;
        let (Some(pk), Some(sk)) = (get_opt_s(item, "pk"), get_opt_s(item, "sk")) else {
            self.counts.other += 1;
            self.malformed.push(("?".into(), "?".into(), "item without string keys pk/sk".into()));
            return;
        };
        let (pk, sk) = (pk.as_str(), sk.as_str());
        let kind = ItemKind::of(pk, sk);
        match kind {
            ItemKind::User => self.counts.users += 1,
            ItemKind::EmailClaim => self.counts.email_claims += 1,
            ItemKind::UsernameClaim => self.counts.username_claims += 1,
            ItemKind::Code => self.counts.codes += 1,
            ItemKind::Session => self.counts.sessions += 1,
            ItemKind::RateCounter => self.counts.rate_counters += 1,
            ItemKind::Group => self.counts.groups += 1,
            ItemKind::Permission => self.counts.permissions += 1,
            ItemKind::Audit => self.counts.audit_entries += 1,
            ItemKind::Mfa => self.counts.second_factors += 1,
            ItemKind::Challenge => self.counts.challenges += 1,
            ItemKind::Identity => self.counts.identity_items += 1,
            ItemKind::Other => self.counts.other += 1,
        }
        let expires_at = match get_opt_n::<i64>(item, "expires_at") {
            Ok(t) => t,
            Err(_) => {
                self.malformed.push((pk.into(), sk.into(), "expires_at is not a number".into()));
                return;
            }
        };
        if expires_at.is_some_and(|t| t <= now) {
            self.expired.push((pk.into(), sk.into(), label(kind)));
            if kind == ItemKind::User {
                if let Some(id) = pk.strip_prefix(USER_PREFIX) {
                    self.expired_users.insert(id.to_owned());
                }
            }
            return;
        }
        let bad = |s: &mut Self, why: String| s.malformed.push((pk.into(), sk.into(), why));
        match kind {
            ItemKind::User => match user_row(item) {
                Ok(row) => {
                    self.users.insert(pk.trim_start_matches(USER_PREFIX).to_owned(), row);
                    self.unlisted.extend(unlisted(item, pk, sk));
                }
                Err(why) => bad(self, why),
            },
            ItemKind::Group | ItemKind::Permission => self.unlisted.extend(unlisted(item, pk, sk)),
            ItemKind::EmailClaim | ItemKind::UsernameClaim => match claim_row(item) {
                Ok(row) => {
                    let (map, prefix) = if kind == ItemKind::EmailClaim {
                        (&mut self.emails, EMAIL_PREFIX)
                    } else {
                        (&mut self.usernames, USERNAME_PREFIX)
                    };
                    map.insert(pk.trim_start_matches(prefix).to_owned(), row);
                }
                Err(why) => bad(self, why),
            },
            ItemKind::Code | ItemKind::Session | ItemKind::Mfa => {
                let user = pk.trim_start_matches(USER_PREFIX).to_owned();
                self.dependents.push((pk.into(), sk.into(), user, kind == ItemKind::Session));
            }
            // Either side of a provider link depends on its account: the account's side by its
            // partition, the claim by the account it names.
            ItemKind::Identity => {
                match pk.strip_prefix(USER_PREFIX).map(str::to_owned).or_else(|| get_opt_s(item, "user_id")) {
                    Some(user) => self.dependents.push((pk.into(), sk.into(), user, false)),
                    None => bad(self, "identity claim without a user_id".into()),
                }
            }
            ItemKind::RateCounter | ItemKind::Audit | ItemKind::Challenge | ItemKind::Other => {}
        }
    }

    /// Whether this user is gone: "missing" or "expired", or None when it is live.
    fn gone(&self, id: &str) -> Option<&'static str> {
        if self.users.contains_key(id) {
            None
        } else if self.expired_users.contains(id) {
            Some("expired")
        } else {
            Some("missing")
        }
    }

    /// Every inconsistency this snapshot shows, sorted.
    pub(super) fn findings(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let problem = |kind, pk: String, sk: &str, user: &str, detail: String| Problem {
            kind,
            pk,
            sk: sk.to_owned(),
            user_id: Some(user.to_owned()),
            detail,
            outcome: Outcome::Found,
        };
        for (is_email, claims) in [(true, &self.emails), (false, &self.usernames)] {
            let (orphan, stale) = if is_email {
                (ProblemKind::OrphanEmailClaim, ProblemKind::StaleEmailClaim)
            } else {
                (ProblemKind::OrphanUsernameClaim, ProblemKind::StaleUsernameClaim)
            };
            for (value, claim) in claims {
                let (pk, sk) = claim_key(is_email, value);
                match self.users.get(&claim.user_id) {
                    None => {
                        let why = self.gone(&claim.user_id).unwrap_or("missing");
                        out.push(problem(orphan, pk, sk, &claim.user_id, format!("its user is {why}")));
                    }
                    Some(u) => {
                        let current = if is_email { Some(&u.email) } else { u.username.as_ref() };
                        if current != Some(value) {
                            let what = if is_email { "address" } else { "username" };
                            let detail = match current {
                                Some(c) => format!("its user's {what} is '{c}' now"),
                                None => format!("its user has no {what} now"),
                            };
                            out.push(problem(stale, pk, sk, &claim.user_id, detail));
                        }
                    }
                }
            }
        }
        for (id, u) in &self.users {
            let pk = user_pk(id);
            let checks = [
                (true, Some(&u.email), &self.emails, ProblemKind::MissingEmailClaim, ProblemKind::ForeignEmailClaim),
                (
                    false,
                    u.username.as_ref(),
                    &self.usernames,
                    ProblemKind::MissingUsernameClaim,
                    ProblemKind::ForeignUsernameClaim,
                ),
            ];
            for (is_email, value, claims, missing, foreign) in checks {
                let Some(value) = value else { continue };
                let (claim, _) = claim_key(is_email, value);
                match claims.get(value) {
                    None => out.push(problem(missing, pk.clone(), PROFILE, id, format!("no live claim {claim}"))),
                    Some(c) if &c.user_id != id => out.push(problem(
                        foreign,
                        pk.clone(),
                        PROFILE,
                        id,
                        format!("{claim} is held by user {}", c.user_id),
                    )),
                    Some(_) => {}
                }
            }
        }
        for (pk, sk, user, is_session) in &self.dependents {
            if let Some(why) = self.gone(user) {
                let kind = if *is_session { ProblemKind::OrphanSession } else { ProblemKind::OrphanCode };
                out.push(problem(kind, pk.clone(), sk, user, format!("its user is {why}")));
            }
        }
        for u in &self.unlisted {
            let detail = match &u.seen {
                [None, None] => format!("no {LIST_PK} / {LIST_SK}: staff listings do not show it"),
                [a, b] => format!("{LIST_PK} / {LIST_SK} are {} / {}, not its own", shown(a), shown(b)),
            };
            out.push(Problem {
                kind: ProblemKind::NotListed,
                pk: u.pk.clone(),
                sk: u.sk.clone(),
                user_id: u.user_id.clone(),
                detail,
                outcome: Outcome::Found,
            });
        }
        for (pk, sk, why) in &self.malformed {
            out.push(Problem {
                kind: ProblemKind::Malformed,
                pk: pk.clone(),
                sk: sk.clone(),
                user_id: None,
                detail: why.clone(),
                outcome: Outcome::NotRepairable,
            });
        }
        out.sort_by(|a, b| (a.kind, &a.pk, &a.sk).cmp(&(b.kind, &b.pk, &b.sk)));
        out
    }
}

/// An attribute value in a finding's detail.
fn shown(v: &Option<AttributeValue>) -> String {
    match v {
        None => "absent".to_owned(),
        Some(AttributeValue::S(s)) => format!("'{s}'"),
        Some(other) => format!("{other:?}"),
    }
}

/// The key of the claim on `value`: an address (normalised; `email`) or a username's key.
pub(super) fn claim_key(email: bool, value: &str) -> (String, &'static str) {
    if email {
        (email_pk_normalised(value), EMAIL)
    } else {
        (username_pk(value), USERNAME)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::dynamo::schema::n;

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    fn user(id: &str, email: &str, username: Option<&str>, expires: Option<i64>) -> Item {
        let mut i = item(&[
            ("pk", s(format!("USER#{id}"))),
            ("sk", s("PROFILE")),
            ("email", s(email)),
            ("email_normalised", s(email.to_lowercase())),
            ("version", n(1)),
            (LIST_PK, s("USER")),
            (LIST_SK, s(id)),
        ]);
        if let Some(u) = username {
            i.insert("username".into(), s(u));
        }
        if let Some(t) = expires {
            i.insert("expires_at".into(), n(t));
        }
        i
    }

    fn claim(pk: &str, sk: &str, id: &str, expires: Option<i64>) -> Item {
        let mut i = item(&[("pk", s(pk)), ("sk", s(sk)), ("user_id", s(id))]);
        if let Some(t) = expires {
            i.insert("expires_at".into(), n(t));
        }
        i
    }

    fn snapshot(items: &[Item]) -> Snapshot {
        let mut snap = Snapshot::default();
        for i in items {
            snap.add(i, 1000);
        }
        snap
    }

    fn kinds(snap: &Snapshot) -> Vec<(ProblemKind, String)> {
        snap.findings().into_iter().map(|p| (p.kind, p.pk)).collect()
    }

    #[test]
    fn a_consistent_table_has_no_findings() {
        let snap = snapshot(&[
            user("a", "A@x.io", Some("Ann"), None),
            claim("EMAIL#a@x.io", "EMAIL", "a", None),
            claim("USERNAME#ann", "USERNAME", "a", None),
            user("b", "b@x.io", None, Some(5000)),
            claim("EMAIL#b@x.io", "EMAIL", "b", Some(5000)),
            item(&[("pk", s("USER#a")), ("sk", s("SESSION#1")), ("expires_at", n(2000))]),
            item(&[("pk", s("RATE#login#ip")), ("sk", s("60")), ("expires_at", n(2000))]),
        ]);
        assert_eq!(kinds(&snap), vec![]);
        assert_eq!(snap.counts.items, 7);
        assert_eq!(snap.counts.users, 2);
        assert_eq!(snap.counts.sessions, 1);
        assert_eq!(snap.counts.rate_counters, 1);
    }

    #[test]
    fn each_inconsistency_is_named() {
        let snap = snapshot(&[
            claim("EMAIL#gone@x.io", "EMAIL", "gone", None),
            user("old", "new@x.io", Some("newname"), None),
            claim("EMAIL#new@x.io", "EMAIL", "old", None),
            claim("EMAIL#old@x.io", "EMAIL", "old", None),
            claim("USERNAME#oldname", "USERNAME", "old", None),
            user("bare", "bare@x.io", None, None),
            user("dup", "dup@x.io", None, None),
            claim("EMAIL#dup@x.io", "EMAIL", "other", None),
            item(&[("pk", s("USER#gone")), ("sk", s("CODE#activation")), ("expires_at", n(2000))]),
            item(&[("pk", s("USER#gone")), ("sk", s("SESSION#s")), ("expires_at", n(2000))]),
            user("late", "late@x.io", None, Some(999)),
            claim("EMAIL#late2@x.io", "EMAIL", "late", None),
            item(&[("pk", s("RATE#x#y")), ("sk", s("1")), ("expires_at", n(10))]),
            item(&[("pk", s("USER#z")), ("sk", s("PROFILE"))]),
        ]);
        assert_eq!(
            kinds(&snap),
            vec![
                (ProblemKind::OrphanEmailClaim, "EMAIL#dup@x.io".into()),
                (ProblemKind::OrphanEmailClaim, "EMAIL#gone@x.io".into()),
                (ProblemKind::OrphanEmailClaim, "EMAIL#late2@x.io".into()),
                (ProblemKind::StaleEmailClaim, "EMAIL#old@x.io".into()),
                (ProblemKind::StaleUsernameClaim, "USERNAME#oldname".into()),
                (ProblemKind::MissingEmailClaim, "USER#bare".into()),
                (ProblemKind::ForeignEmailClaim, "USER#dup".into()),
                (ProblemKind::MissingUsernameClaim, "USER#old".into()),
                (ProblemKind::OrphanCode, "USER#gone".into()),
                (ProblemKind::OrphanSession, "USER#gone".into()),
                (ProblemKind::Malformed, "USER#z".into()),
            ]
        );
        let late = snap.findings().into_iter().find(|p| p.pk == "EMAIL#late2@x.io").unwrap();
        assert_eq!(late.detail, "its user is expired");
        let stale = snap.findings().into_iter().find(|p| p.pk == "USERNAME#oldname").unwrap();
        assert_eq!(stale.detail, "its user's username is 'newname' now");
        assert_eq!(snap.expired.len(), 2);
    }

    #[test]
    fn users_and_groups_without_their_list_keys_are_not_listed() {
        let mut bare = user("a", "a@x.io", None, None);
        bare.remove(LIST_PK);
        bare.remove(LIST_SK);
        let mut wrong = user("b", "b@x.io", None, None);
        wrong.insert(LIST_SK.into(), s("c"));
        let mut expired = user("e", "e@x.io", None, Some(999));
        expired.remove(LIST_PK);
        let group = |name: &str, listed: bool| {
            let mut g = item(&[("pk", s(format!("GROUP#{name}"))), ("sk", s("GROUP")), ("name", s(name))]);
            if listed {
                g.insert(LIST_PK.into(), s("GROUP"));
                g.insert(LIST_SK.into(), s(name));
            }
            g
        };
        let snap = snapshot(&[
            bare,
            claim("EMAIL#a@x.io", "EMAIL", "a", None),
            wrong,
            claim("EMAIL#b@x.io", "EMAIL", "b", None),
            expired,
            user("d", "d@x.io", None, None),
            claim("EMAIL#d@x.io", "EMAIL", "d", None),
            group("editors", false),
            group("readers", true),
            item(&[("pk", s("RATE#x#y")), ("sk", s("1")), ("expires_at", n(2000))]),
        ]);
        let found = snap.findings();
        assert_eq!(
            found.iter().map(|p| (p.kind, p.pk.as_str(), p.user_id.as_deref())).collect::<Vec<_>>(),
            vec![
                (ProblemKind::NotListed, "GROUP#editors", None),
                (ProblemKind::NotListed, "USER#a", Some("a")),
                (ProblemKind::NotListed, "USER#b", Some("b")),
            ]
        );
        assert_eq!(found[1].detail, "no list_pk / list_sk: staff listings do not show it");
        assert_eq!(found[2].detail, "list_pk / list_sk are 'USER' / 'c', not its own");
    }

    #[test]
    fn an_expired_claim_of_a_live_user_is_a_missing_claim() {
        let snap = snapshot(&[user("a", "a@x.io", None, None), claim("EMAIL#a@x.io", "EMAIL", "a", Some(900))]);
        assert_eq!(kinds(&snap), vec![(ProblemKind::MissingEmailClaim, "USER#a".into())]);
        assert_eq!(snap.expired, vec![("EMAIL#a@x.io".to_owned(), "EMAIL".to_owned(), "email claim")]);
    }
}
