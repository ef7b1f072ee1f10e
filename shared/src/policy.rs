//! The security decisions, as pure functions over plain values (settings, counts, timestamps).
//!
//! The services gather the facts (store reads, the clock) and act on the answer (store writes,
//! emails, the HTTP status); what the answer is given the facts lives here, each with a table of
//! cases. Nothing here reads the clock, the settings or the store.

/// How long after a rotation, in the whole seconds of the stamps, the previous token is still
/// taken for a concurrent request that lost the race rather than a replay. Two requests a few
/// milliseconds apart carry consecutive stamps whenever a second boundary falls between them, so
/// comparing stamps for equality would revoke the session of a client racing itself by the luck
/// of the clock. With a window of one second, any two requests less than a second apart are
/// judged alike, and a replay two seconds or more after the rotation is always reuse.
pub const RACE_WINDOW: i64 = 1;

/// The account's new `tokens_valid_after` when every token issued before now is revoked (log out
/// everywhere, disabling, an operator's password change): now, and always past the current stamp,
/// so that a revocation is never a no-op, even twice in one second or under a clock behind the
/// stamp. Tokens are refused when issued before the stamp (`iat < tokens_valid_after`).
pub fn revocation_stamp(current: i64, now: i64) -> i64 {
    now.max(current.saturating_add(1))
}

/// What `POST /auth/jwt/refresh/` does with a refresh token whose signature, session and account
/// were found good.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshVerdict {
    /// The session's current token, rotation on: rotate the session (conditionally) and issue
    /// the new pair.
    Rotate,
    /// The session's current token, rotation off: an access token alone.
    KeepCurrent,
    /// The session's previous token within `REFRESH_REUSE_GRACE`: a pair for the same session
    /// (its current refresh token), never a fork.
    Grace,
    /// A request that lost the rotation to a concurrent one: 401, no harm done.
    LostRace,
    /// A replay: revoke the session and alert its owner; 401.
    Reuse,
}

/// The refresh verdict. `presented`, `current` and `previous` are the jtis of the token and of the
/// session; `lost_rotation` is the store's verdict that this request held the current token and
/// another rotated the session first (the session then being the one read after); `since_rotation`
/// is the time since the session's last rotation (`None`: never rotated); `grace_secs` is
/// `REFRESH_REUSE_GRACE` (0: off); `rotate` is `ROTATE_REFRESH_TOKENS`.
pub fn refresh_verdict(
    presented: &str,
    current: &str,
    previous: Option<&str>,
    lost_rotation: bool,
    since_rotation: Option<i64>,
    grace_secs: i64,
    rotate: bool,
) -> RefreshVerdict {
    if !lost_rotation && presented == current {
        return if rotate { RefreshVerdict::Rotate } else { RefreshVerdict::KeepCurrent };
    }
    let is_previous = previous == Some(presented);
    if is_previous && within_grace(since_rotation, grace_secs) {
        return RefreshVerdict::Grace;
    }
    if lost_rotation || (is_previous && since_rotation.is_some_and(|s| s <= RACE_WINDOW)) {
        return RefreshVerdict::LostRace;
    }
    RefreshVerdict::Reuse
}

/// Whether a rotation `since_rotation` ago is within a `REFRESH_REUSE_GRACE` of `grace_secs`.
fn within_grace(since_rotation: Option<i64>, grace_secs: i64) -> bool {
    grace_secs > 0 && since_rotation.is_some_and(|s| s <= grace_secs)
}

/// Whether `POST /auth/jwt/verify/` takes a refresh token of a live session: the session's
/// current token, or its previous one within `REFRESH_REUSE_GRACE` (`grace_secs`). Anything else
/// is not valid (and, unlike a refresh, revokes nothing).
pub fn refresh_token_live(
    presented: &str,
    current: &str,
    previous: Option<&str>,
    since_rotation: Option<i64>,
    grace_secs: i64,
) -> bool {
    presented == current || (previous == Some(presented) && within_grace(since_rotation, grace_secs))
}

/// How long (account, IP) logins stay locked after `failures` failures, from the last one:
/// nothing below `threshold` (`LOGIN_LOCKOUT_THRESHOLD`), then 1 s, 2 s, 4 s ... doubling with
/// each further failure, capped at `max_secs` (`LOGIN_LOCKOUT_MAX`).
pub fn lockout_secs(failures: u64, threshold: u32, max_secs: i64) -> i64 {
    let threshold = u64::from(threshold);
    if failures < threshold {
        return 0;
    }
    let doublings = (failures - threshold).min(20) as u32;
    (1i64 << doublings).min(max_secs)
}

/// Whether `failures` reached the lockout: every further attempt waits for the lock to end.
pub fn lockout_reached(failures: u64, threshold: u32) -> bool {
    failures >= u64::from(threshold)
}

/// The seconds still locked at `now` after `failures` failures, the last at `last_at` (the
/// Retry-After of the 429), or `None` when a login may be tried.
pub fn locked_for(failures: u64, last_at: i64, now: i64, threshold: u32, max_secs: i64) -> Option<u64> {
    let until = last_at + lockout_secs(failures, threshold, max_secs);
    (until > now).then(|| (until - now) as u64)
}

/// The start of the fixed window of `window_secs` holding `now` (windows start at multiples of
/// their length, on the UTC epoch): a budget's counter is keyed by it, so it never outlives its
/// window. `window_secs` is above zero (`Rate::parse` refuses 0).
pub fn window_start(now: i64, window_secs: i64) -> i64 {
    now - now.rem_euclid(window_secs)
}

/// Whether a budget of `limit` per window is overdrawn once a request was counted in it
/// (`count` includes this one): 429.
pub fn over_budget(count: u64, limit: u64) -> bool {
    count > limit
}

/// Whether a budget of `limit` per window has nothing left for another request (`count` read
/// before taking one): 429 without trying.
pub fn budget_spent(count: u64, limit: u64) -> bool {
    count >= limit
}

/// The Retry-After, in seconds, of a 429 whose budget renews at `end`: at least 1.
pub fn retry_after(end: i64, now: i64) -> u64 {
    (end - now).max(1) as u64
}

/// Guesses a numeric one-time code takes, right or wrong.
pub const MAX_CODE_ATTEMPTS: u32 = 5;

/// A stored code as a presented one is judged against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeFacts {
    /// The presented code's MAC is the stored one.
    pub matches: bool,
    pub expires_at: i64,
    pub spent: bool,
    /// Guesses reserved so far (numeric codes; 0 for links, never counted).
    pub attempts: u32,
}

/// Whether a code accepts the presented one at `now`: right, unexpired, unspent, and no more
/// guesses reserved than the [`MAX_CODE_ATTEMPTS`] it takes.
pub fn code_usable(code: CodeFacts, now: i64) -> bool {
    code.matches && code.expires_at > now && !code.spent && code.attempts <= MAX_CODE_ATTEMPTS
}

/// The answer to a presented one-time code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeVerdict {
    /// Right: the confirmation goes ahead.
    Accept,
    /// The account's `CODE_GUESS_BUDGET` for the purpose is spent this window: refused unjudged.
    BudgetSpent,
    /// Wrong, expired, spent, missing, or the code's own [`MAX_CODE_ATTEMPTS`] taken. Answered
    /// exactly as a spent budget (one 400 for all of them).
    Invalid,
}

/// The code verdict. `account_budget_left`: the guess got a unit of the account's guess budget
/// (always true for link codes, which are never counted, and with the budget off); `code`: the
/// record as the guess reserved one of its own attempts (numeric) or read it (link), `None` when
/// there is none to judge (no live code, or its attempts all taken); it is not looked at when the
/// account's budget is spent.
pub fn code_verdict(account_budget_left: bool, code: Option<CodeFacts>, now: i64) -> CodeVerdict {
    if !account_budget_left {
        return CodeVerdict::BudgetSpent;
    }
    match code {
        Some(code) if code_usable(code, now) => CodeVerdict::Accept,
        _ => CodeVerdict::Invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_stamp_table() {
        // (case, current stamp, now, expected)
        const CASES: &[(&str, i64, i64, i64)] = &[
            ("stamp in the past: now", 100, 200, 200),
            ("revoked earlier this second: one past", 200, 200, 201),
            ("twice in one second: still moves", 201, 200, 202),
            ("clock behind the stamp: past the stamp", 500, 200, 501),
            ("never revoked", 0, 1, 1),
            ("no overflow", i64::MAX, 5, i64::MAX),
        ];
        for &(case, current, now, expected) in CASES {
            assert_eq!(revocation_stamp(current, now), expected, "{case}");
        }
    }

    #[test]
    fn refresh_verdict_table() {
        use RefreshVerdict::*;
        // (case, presented, current, previous, lost_rotation, since_rotation, grace, rotate, expected)
        type Case = (
            &'static str,
            &'static str,
            &'static str,
            Option<&'static str>,
            bool,
            Option<i64>,
            i64,
            bool,
            RefreshVerdict,
        );
        const CASES: &[Case] = &[
            ("current, rotating", "a", "a", None, false, None, 0, true, Rotate),
            ("current after a rotation, rotating", "b", "b", Some("a"), false, Some(0), 0, true, Rotate),
            ("current, rotating, grace on", "b", "b", Some("a"), false, Some(100), 10, true, Rotate),
            ("current, rotation off", "a", "a", None, false, None, 0, false, KeepCurrent),
            ("current, rotation off, grace on", "a", "a", None, false, None, 10, false, KeepCurrent),
            // No grace: the race window alone, both sides of it.
            ("previous, no grace, 0 s", "a", "b", Some("a"), false, Some(0), 0, true, LostRace),
            ("previous, no grace, 1 s", "a", "b", Some("a"), false, Some(1), 0, true, LostRace),
            ("previous, no grace, 2 s", "a", "b", Some("a"), false, Some(2), 0, true, Reuse),
            ("previous, no grace, clock behind", "a", "b", Some("a"), false, Some(-3), 0, true, LostRace),
            ("previous, no grace, long after", "a", "b", Some("a"), false, Some(3600), 0, true, Reuse),
            ("previous, never rotated", "a", "b", Some("a"), false, None, 10, true, Reuse),
            // Grace: both sides of its edge, and the race window past it.
            ("previous, grace 10, 0 s", "a", "b", Some("a"), false, Some(0), 10, true, Grace),
            ("previous, grace 10, 10 s", "a", "b", Some("a"), false, Some(10), 10, true, Grace),
            ("previous, grace 10, 11 s", "a", "b", Some("a"), false, Some(11), 10, true, Reuse),
            ("previous, grace 1, 1 s", "a", "b", Some("a"), false, Some(1), 1, true, Grace),
            ("previous, grace 1, 2 s", "a", "b", Some("a"), false, Some(2), 1, true, Reuse),
            ("previous, grace 60, 60 s", "a", "b", Some("a"), false, Some(60), 60, true, Grace),
            ("previous, grace 60, 61 s", "a", "b", Some("a"), false, Some(61), 60, true, Reuse),
            ("previous, grace 10, rotation off", "a", "b", Some("a"), false, Some(5), 10, false, Grace),
            // Older than the previous token: always a replay.
            ("older, no grace, 0 s", "x", "b", Some("a"), false, Some(0), 0, true, Reuse),
            ("older, grace 10, 0 s", "x", "b", Some("a"), false, Some(0), 10, true, Reuse),
            ("older, no previous", "x", "b", None, false, None, 0, true, Reuse),
            ("other, rotation off", "x", "a", None, false, None, 0, false, Reuse),
            // Lost the conditional rotation: never a replay, whatever the clock says.
            ("lost, previous, no grace, 5 s", "a", "b", Some("a"), true, Some(5), 0, true, LostRace),
            ("lost, previous, grace 10, 5 s", "a", "b", Some("a"), true, Some(5), 10, true, Grace),
            ("lost, previous, grace 10, 11 s", "a", "b", Some("a"), true, Some(11), 10, true, LostRace),
            ("lost, rotated twice since", "a", "c", Some("b"), true, Some(0), 10, true, LostRace),
            ("lost, yet current", "a", "a", Some("z"), true, Some(0), 0, true, LostRace),
        ];
        for &(case, presented, current, previous, lost, since, grace, rotate, expected) in CASES {
            let got = refresh_verdict(presented, current, previous, lost, since, grace, rotate);
            assert_eq!(got, expected, "case {case:?}");
        }
    }

    #[test]
    fn refresh_token_live_table() {
        // (case, presented, current, previous, since_rotation, grace, expected)
        type Case = (&'static str, &'static str, &'static str, Option<&'static str>, Option<i64>, i64, bool);
        const CASES: &[Case] = &[
            ("current, never rotated", "a", "a", None, None, 0, true),
            ("current, rotated", "b", "b", Some("a"), Some(100), 0, true),
            ("previous, no grace, 0 s", "a", "b", Some("a"), Some(0), 0, false),
            ("previous, grace 10, 10 s", "a", "b", Some("a"), Some(10), 10, true),
            ("previous, grace 10, 11 s", "a", "b", Some("a"), Some(11), 10, false),
            ("previous, grace 10, never rotated", "a", "b", Some("a"), None, 10, false),
            ("older, grace 10, 0 s", "x", "b", Some("a"), Some(0), 10, false),
            ("other, no previous", "x", "a", None, None, 10, false),
        ];
        for &(case, presented, current, previous, since, grace, expected) in CASES {
            assert_eq!(refresh_token_live(presented, current, previous, since, grace), expected, "case {case:?}");
        }
    }
    #[test]
    fn lockout_secs_table() {
        // (case, failures, threshold, max_secs, expected)
        const CASES: &[(&str, u64, u32, i64, i64)] = &[
            ("no failure", 0, 5, 900, 0),
            ("one under the threshold", 4, 5, 900, 0),
            ("at the threshold", 5, 5, 900, 1),
            ("one past", 6, 5, 900, 2),
            ("two past", 7, 5, 900, 4),
            ("nine past", 14, 5, 900, 512),
            ("ten past: 1024 capped", 15, 5, 900, 900),
            ("far past", 1000, 5, 900, 900),
            ("every count", u64::MAX, 5, 900, 900),
            ("threshold 1, first failure", 1, 1, 900, 1),
            ("threshold 1, none", 0, 1, 900, 0),
            ("cap exactly reached", 15, 5, 1024, 1024),
            ("doublings stop at 2^20", 100, 5, i64::MAX, 1 << 20),
            ("cap of 1 s", 9, 5, 1, 1),
            ("large threshold, under", 999, 1000, 900, 0),
            ("large threshold, at", 1000, 1000, 900, 1),
        ];
        for &(case, failures, threshold, max, expected) in CASES {
            assert_eq!(lockout_secs(failures, threshold, max), expected, "case {case:?}");
            assert_eq!(lockout_reached(failures, threshold), expected > 0, "case {case:?} (reached)");
        }
    }

    #[test]
    fn locked_for_table() {
        // (case, failures, last_at, now, expected), threshold 5, cap 900
        const CASES: &[(&str, u64, i64, i64, Option<u64>)] = &[
            ("under the threshold", 4, 1000, 1000, None),
            ("at the threshold, same second", 5, 1000, 1000, Some(1)),
            ("at the threshold, a second on", 5, 1000, 1001, None),
            ("one past, a second on", 6, 1000, 1001, Some(1)),
            ("one past, two seconds on", 6, 1000, 1002, None),
            ("capped, just before the end", 30, 1000, 1899, Some(1)),
            ("capped, at the end", 30, 1000, 1900, None),
            ("clock behind the last failure", 5, 1000, 990, Some(11)),
        ];
        for &(case, failures, last_at, now, expected) in CASES {
            assert_eq!(locked_for(failures, last_at, now, 5, 900), expected, "case {case:?}");
        }
    }
    #[test]
    fn window_start_table() {
        // (case, now, window_secs, expected start)
        const CASES: &[(&str, i64, i64, i64)] = &[
            ("epoch", 0, 60, 0),
            ("first second", 1, 60, 0),
            ("last second of a window", 59, 60, 0),
            ("first second of the next", 60, 60, 60),
            ("one past", 61, 60, 60),
            ("an hour window, its last second", 1_700_006_399, 3600, 1_700_002_800),
            ("an hour window, the next", 1_700_006_400, 3600, 1_700_006_400),
            ("a UTC day", 1_700_000_000, 86_400, 1_699_920_000),
            ("a UTC day, its last second", 1_700_006_399, 86_400, 1_699_920_000),
            ("a UTC day, the next", 1_700_006_400, 86_400, 1_700_006_400),
            ("one-second windows", 1_700_000_123, 1, 1_700_000_123),
            ("before the epoch", -1, 60, -60),
            ("before the epoch, edge", -60, 60, -60),
        ];
        for &(case, now, secs, expected) in CASES {
            let start = window_start(now, secs);
            assert_eq!(start, expected, "case {case:?}");
            assert!(start <= now && now < start + secs, "case {case:?}: now within [start, start + window)");
        }
    }

    #[test]
    fn budget_table() {
        // (case, count, limit, over_budget (counted), budget_spent (before taking))
        const CASES: &[(&str, u64, u64, bool, bool)] = &[
            ("none yet", 0, 5, false, false),
            ("one under", 4, 5, false, false),
            ("at the limit", 5, 5, false, true),
            ("one over", 6, 5, true, true),
            ("far over", 1000, 5, true, true),
            ("limit 1, first", 1, 1, false, true),
            ("limit 1, second", 2, 1, true, true),
            ("limit 1, none", 0, 1, false, false),
        ];
        for &(case, count, limit, over, spent) in CASES {
            assert_eq!(over_budget(count, limit), over, "case {case:?} (over_budget)");
            assert_eq!(budget_spent(count, limit), spent, "case {case:?} (budget_spent)");
        }
    }

    #[test]
    fn retry_after_table() {
        // (case, end, now, expected)
        const CASES: &[(&str, i64, i64, u64)] = &[
            ("a full minute left", 1060, 1000, 60),
            ("two seconds left", 1002, 1000, 2),
            ("one second left", 1001, 1000, 1),
            ("at the end", 1000, 1000, 1),
            ("past the end", 990, 1000, 1),
            ("a day left", 86_400, 0, 86_400),
        ];
        for &(case, end, now, expected) in CASES {
            assert_eq!(retry_after(end, now), expected, "case {case:?}");
        }
    }
    #[test]
    fn code_verdict_table() {
        use CodeVerdict::*;
        const NOW: i64 = 1000;
        const fn code(matches: bool, expires_at: i64, spent: bool, attempts: u32) -> Option<CodeFacts> {
            Some(CodeFacts { matches, expires_at, spent, attempts })
        }
        // (case, account budget left, code, expected)
        const CASES: &[(&str, bool, Option<CodeFacts>, CodeVerdict)] = &[
            ("budget spent, no code", false, None, BudgetSpent),
            ("budget spent, right code: never judged", false, code(true, 1600, false, 1), BudgetSpent),
            ("budget spent, wrong code", false, code(false, 1600, false, 1), BudgetSpent),
            ("no code (none live, or its attempts all taken)", true, None, Invalid),
            ("right, first attempt", true, code(true, 1600, false, 1), Accept),
            ("right, fourth attempt", true, code(true, 1600, false, 4), Accept),
            ("right, fifth and last attempt", true, code(true, 1600, false, MAX_CODE_ATTEMPTS), Accept),
            ("right, a sixth attempt", true, code(true, 1600, false, MAX_CODE_ATTEMPTS + 1), Invalid),
            ("right link code, never counted", true, code(true, 1600, false, 0), Accept),
            ("wrong, first attempt", true, code(false, 1600, false, 1), Invalid),
            ("wrong, last attempt", true, code(false, 1600, false, MAX_CODE_ATTEMPTS), Invalid),
            ("right, expires next second", true, code(true, NOW + 1, false, 1), Accept),
            ("right, expires now", true, code(true, NOW, false, 1), Invalid),
            ("right, expired", true, code(true, NOW - 1, false, 1), Invalid),
            ("right, spent", true, code(true, 1600, true, 1), Invalid),
            ("wrong and spent", true, code(false, 1600, true, 1), Invalid),
        ];
        for &(case, budget_left, code, expected) in CASES {
            assert_eq!(code_verdict(budget_left, code, NOW), expected, "case {case:?}");
            if let Some(c) = code.filter(|_| budget_left) {
                assert_eq!(code_usable(c, NOW), expected == Accept, "case {case:?} (usable)");
            }
        }
    }
}
