//! authctl: Gatehouse's admin CLI, over the core crate, against the same DynamoDB table as the
//! Lambda functions (real AWS through the usual credential chain, or the local emulator through
//! `AWS_ENDPOINT_URL`).

mod args;
mod commands;
mod django;
mod env;
mod jwt_key;
mod perms;

use std::process::ExitCode;

use args::Opt;

/// Why a command failed, and the exit code scripts see.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    /// One line each, printed to stderr.
    pub lines: Vec<String>,
}

pub const EXIT_RUNTIME: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_REFUSED: u8 = 3;

impl Fail {
    pub fn runtime(msg: impl Into<String>) -> Self {
        Self { code: EXIT_RUNTIME, lines: vec![msg.into()] }
    }
    pub fn usage(msg: impl Into<String>) -> Self {
        Self { code: EXIT_USAGE, lines: vec![msg.into()] }
    }
    pub fn refused(msg: impl Into<String>) -> Self {
        Self { code: EXIT_REFUSED, lines: vec![msg.into()] }
    }
}

impl From<gatehouse_core::ports::StoreError> for Fail {
    fn from(e: gatehouse_core::ports::StoreError) -> Self {
        let msg = e.to_string();
        let hint = if msg.contains("ResourceNotFoundException") {
            format!(" (is TABLE_NAME={} right, and does the table exist?)", env::table_name())
        } else if msg.contains("dispatch failure") {
            match env::local_endpoint() {
                Some(url) => format!(" (is the emulator running at {url}?)"),
                None => " (is DynamoDB reachable from here?)".to_owned(),
            }
        } else if msg.contains("failed to construct request") {
            " (check AWS_REGION and the AWS credentials)".to_owned()
        } else {
            String::new()
        };
        Self::runtime(format!("{msg}{hint}"))
    }
}

/// A command: its name, what it does, its options and the longer story `--help` tells.
pub struct Command {
    pub name: &'static str,
    /// The word the command takes besides its options (`FILE`), if any.
    pub operand: Option<&'static str>,
    pub summary: &'static str,
    pub opts: &'static [Opt],
    pub details: &'static str,
}

const EMAIL: Opt = Opt { name: "email", value: Some("EMAIL"), help: "the account's email address (case-insensitive)" };
const PASSWORD: Opt = Opt {
    name: "password",
    value: Some("PASSWORD"),
    help: "the password (visible to other local users in the process list: prefer AUTHCTL_PASSWORD or the prompt)",
};
const CREATE_OPTS: &[Opt] = &[
    EMAIL,
    PASSWORD,
    Opt { name: "username", value: Some("NAME"), help: "optional username (letters, digits and @.+-_)" },
    Opt { name: "first-name", value: Some("NAME"), help: "optional first name" },
    Opt { name: "last-name", value: Some("NAME"), help: "optional last name" },
];
const CREATE_DETAILS: &str = "The account is created active (no activation email is sent). The password comes from \
--password, else from AUTHCTL_PASSWORD, else from a masked prompt (entered twice) when stdin is a terminal; \
without any of them the command fails with exit code 2. The password policy applies (PASSWORD_MIN_LENGTH, \
common passwords, all digits, similarity to email and names): every failure is printed. Without --email on a \
terminal, the email is asked for.";

pub const COMMANDS: &[Command] = &[
    Command { name: "createuser", operand: None, summary: "create an active user", opts: CREATE_OPTS, details: CREATE_DETAILS },
    Command {
        name: "createstaffuser", operand: None,
        summary: "create an active staff user (is_staff)",
        opts: CREATE_OPTS,
        details: CREATE_DETAILS,
    },
    Command {
        name: "createsuperuser", operand: None,
        summary: "create an active superuser (is_staff and is_superuser)",
        opts: CREATE_OPTS,
        details: CREATE_DETAILS,
    },
    Command {
        name: "activateuser", operand: None,
        summary: "activate an inactive account",
        opts: &[EMAIL],
        details: "Activation goes through the same atomic store operation as the activation endpoint, so the \
account also stops expiring, and its pending activation link stops working. An account that is already active \
is left as it is (exit 0). (An emailed code cannot be checked here: codes are stored as MACs under the \
deployment's code key, which authctl does not hold; the user confirms the link themselves.)",
    },
    Command {
        name: "initdefaultadmin", operand: None,
        summary: "create the default superuser from DEFAULT_ADMIN_EMAIL / DEFAULT_ADMIN_PASSWORD, once",
        opts: &[],
        details: "Does nothing (exit 0, with a message) when any superuser exists already or when the email is \
taken; otherwise creates an active superuser. Idempotent: safe to run on every deploy. Missing or invalid \
variables, or a password the policy refuses, exit with code 2.",
    },
    Command {
        name: "changepassword", operand: None,
        summary: "set a user's password (and sign the user out everywhere)",
        opts: &[EMAIL, PASSWORD],
        details: "The password comes from --password, AUTHCTL_PASSWORD or a masked prompt entered twice; the \
password policy applies. Like a password reset, every session of the user is revoked and earlier access \
tokens stop working at our endpoints.",
    },
    Command {
        name: "listusers", operand: None,
        summary: "list users, one line each",
        opts: &[Opt { name: "json", value: None, help: "one JSON object per line, with every profile field" }],
        details: "Prints `id<TAB>email<TAB>active=..<TAB>staff=..<TAB>superuser=..` per user on stdout (or JSON \
lines with --json); progress every 100 users and the total go to stderr. Never-activated accounts past their \
expiry are left out.",
    },
    Command {
        name: "deactivate", operand: None,
        summary: "deactivate an account and revoke all its sessions",
        opts: &[EMAIL],
        details: "Sets is_active=false, marks the account deactivated (no activation or reset link activates it \
again; an admin reactivates it with PATCH /auth/users/{id}/ {\"is_active\": true}) and moves tokens_valid_after \
past every token issued so far, by the same rule as the API, then deletes every session of the user. Running it \
again on an inactive account revokes sessions again (exit 0).",
    },
    Command {
        name: "logout-everywhere", operand: None,
        summary: "revoke every session of a user",
        opts: &[EMAIL],
        details: "Moves tokens_valid_after past every token issued so far (earlier access tokens stop working at \
our endpoints), by the same rule as DELETE /auth/sessions/, and deletes every session, so no refresh token \
works any more. The account stays active.",
    },
    Command {
        name: "mfa-reset", operand: None,
        summary: "turn a user's two-step sign-in off (lost authenticator and recovery codes)",
        opts: &[EMAIL],
        details: "Removes the account's TOTP factor and recovery codes (one transaction, which also clears \
mfa_enabled), then signs the user out everywhere as logout-everywhere does, so nobody stays signed in on the \
strength of the old factor. The user signs in with the password alone and may turn two-step sign-in on again. \
Recorded in the audit trail as mfa.reset. authctl sends no email: tell the owner (the admin API's \
DELETE /auth/admin/users/{id}/mfa/ does email them). An account without a second factor is left as it is (exit 0).",
    },
    Command {
        name: "permissions", operand: None,
        summary: "list the permission registry (built-in and registered permissions)",
        opts: &[Opt { name: "json", value: None, help: "one JSON object per line" }],
        details: "Prints `codename<TAB>name` per permission in codename order, built-in ones (the admin API's own: \
auth.view_group, auth.add_permission, ...) marked `(built in)`; with --json, one object per line with codename, \
name, description and builtin.",
    },
    Command {
        name: "add-permission", operand: None,
        summary: "register a permission (app_label.action), so that groups may grant it",
        opts: &[
            Opt { name: "codename", value: Some("APP.ACTION"), help: "e.g. shop.refund_order (Django's form)" },
            Opt { name: "name", value: Some("NAME"), help: "a human-readable name, e.g. \"Can refund orders\"" },
            Opt { name: "description", value: Some("TEXT"), help: "optional" },
        ],
        details: "As POST /auth/admin/permissions/: a codename already registered, or built in, is refused (exit 3). \
Registering grants nothing by itself: add it to a group (group-add-permission). Any group still naming the \
codename from an earlier registration (a removal cut short) stops naming it first, so old grants never come back.",
    },
    Command {
        name: "remove-permission", operand: None,
        summary: "remove a registered permission: it grants nothing from now on",
        opts: &[Opt { name: "codename", value: Some("APP.ACTION"), help: "the permission" }],
        details: "As DELETE /auth/admin/permissions/{codename}/: the permission stops granting anything at once \
(only registered permissions count) and is taken from every group. Built-in permissions cannot be removed; an \
unknown codename is refused (exit 3).",
    },
    Command {
        name: "grant-group", operand: None,
        summary: "make an account a member of a group",
        opts: &[EMAIL, Opt { name: "group", value: Some("NAME"), help: "an existing group" }],
        details: "The account holds the group's permissions from its next request on (rights are read from the \
stored account, not from tokens). A member already: nothing to do (exit 0). An unknown account or group is \
refused (exit 3). authctl acts with the table's own rights: no staff rule applies here.",
    },
    Command {
        name: "revoke-group", operand: None,
        summary: "take an account out of a group",
        opts: &[EMAIL, Opt { name: "group", value: Some("NAME"), help: "the group" }],
        details: "Takes effect at the account's next request. Not a member: nothing to do (exit 0).",
    },
    Command {
        name: "grant-permission", operand: None,
        summary: "grant a registered permission to an account itself (its user_permissions)",
        opts: &[EMAIL, Opt { name: "codename", value: Some("APP.ACTION"), help: "a built-in or registered permission" }],
        details: "The account holds it from its next request on, while that very permission stays registered (a \
permission removed and registered again is not granted by an old grant). Held already: nothing to do (exit 0). \
An unknown account or an unregistered permission is refused (exit 3). authctl acts with the table's own rights: \
no staff rule applies here.",
    },
    Command {
        name: "revoke-permission", operand: None,
        summary: "take a permission granted to an account itself away",
        opts: &[EMAIL, Opt { name: "codename", value: Some("APP.ACTION"), help: "the permission" }],
        details: "Takes effect at the account's next request (its groups may still grant it). Not granted: nothing to \
do (exit 0).",
    },
    Command {
        name: "group-add-permission", operand: None,
        summary: "let a group grant a registered permission",
        opts: &[
            Opt { name: "group", value: Some("NAME"), help: "an existing group" },
            Opt { name: "codename", value: Some("APP.ACTION"), help: "a built-in or registered permission" },
        ],
        details: "An unregistered permission is refused (exit 3): register it first with add-permission. The write \
is conditional on the group as read (re-read and retried when it changed meanwhile).",
    },
    Command {
        name: "group-remove-permission", operand: None,
        summary: "stop a group granting a permission",
        opts: &[
            Opt { name: "group", value: Some("NAME"), help: "the group" },
            Opt { name: "codename", value: Some("APP.ACTION"), help: "the permission" },
        ],
        details: "Its members stop holding it at their next request (unless another of their groups grants it).",
    },
    Command {
        name: "import-django",
        operand: Some("FILE"),
        summary: "import a Django project's users, groups and permissions (dumpdata JSON), passwords kept",
        opts: &[
            Opt { name: "dry-run", value: None, help: "write nothing: report what the import would do" },
            Opt { name: "json", value: None, help: "print the report as one JSON object" },
            Opt {
                name: "user-model",
                value: Some("APP.MODEL"),
                help: "the user model's records (default: the model whose records have password and email)",
            },
            Opt {
                name: "unusable-unsupported",
                value: None,
                help: "import accounts whose hash Gatehouse cannot verify (md5, ...) with an unusable password",
            },
        ],
        details: "Reads FILE (- for stdin): the JSON array that Django writes with
  python manage.py dumpdata auth.user auth.group --natural-foreign --natural-primary > users.json
(with a custom user model, name it instead of auth.user, e.g. accounts.user). Nobody has to reset a password: \
every account keeps its password hash exactly as Django stored it (PBKDF2 SHA256 / SHA1, argon2, bcrypt, \
bcrypt_sha256, scrypt), the user signs in with the Django password, and the first sign-in rehashes it with \
argon2id. An unusable password (Django's `!...`) stays unusable: that account signs in after a password reset.\n\n\
What is imported: the user model's records (the records with a password and an email field, or --user-model's): \
email (required and valid; unique case-insensitively), username (kept when valid, else dropped with a note), \
first and last name, is_active, is_staff, is_superuser, date_joined, last_login, groups and user_permissions. No \
activation email is sent and nothing expires: an inactive Django account (a djoser registration never activated, \
too) stays inactive until an admin activates it (authctl activateuser). auth.group records become groups; each \
permission `[codename, app_label, model]` becomes the Gatehouse permission app_label.codename (what \
user.has_perm takes), registered when it is neither built in nor registered (with Django's name when the dump \
holds its auth.permission record). Records of other models are counted and left out.\n\n\
Nothing is overwritten: an account whose address (or username) Gatehouse has already is skipped and left as it \
is, so running the same import again writes nothing, never puts an old hash back over an upgraded one, and \
resumes an import that was cut short. A group that exists is left as it is (the dump's members still join it); \
a permission registered already too. Refused and listed: records without a usable email, with a hash Gatehouse \
does not verify (md5, sha1, crypt, unsalted: without --unusable-unsupported), or with fields of the wrong type; \
group names and codenames Gatehouse does not take (the groups and grants are then left out).\n\n\
A dump written without natural keys names groups and permissions by primary key: that works when it also holds \
the auth.group and auth.permission records (and contenttypes records, or natural content types) that resolve \
them; otherwise the whole file is refused before anything is written (exit 2), as is a file that is not JSON \
(the message names the line and column). FILE is read twice, one record at a time (stdin is kept in memory). \
Dates without an offset (USE_TZ = False) are taken as UTC. With --dry-run nothing is written (username conflicts \
with existing accounts show only when writing). Progress goes to stderr when it is a terminal; each account \
created is recorded in the audit trail.\n\n\
Prints a summary (--json: one object with users / groups / permissions counts, ignored models, `problems` with \
each skipped or refused record's kind, model, pk, key and reason, and `notes`). Exit codes: 0 everything imported \
(or, with --dry-run, importable); 3 records skipped or refused (a second run of the same import: every address \
exists); 2 usage error (missing file, not JSON, references the dump cannot resolve, ambiguous user model); 1 \
store error (run again to go on).",
    },
    Command {
        name: "doctor", operand: None,
        summary: "check the table's consistency (claims, users, codes, sessions); --repair fixes it",
        opts: &[
            Opt { name: "repair", value: None, help: "repair what is found, and delete expired items" },
            Opt { name: "json", value: None, help: "print the report as one JSON object" },
            Opt {
                name: "page-size",
                value: Some("N"),
                help: "items per scan request (default: DynamoDB's 1 MB pages)",
            },
        ],
        details: "Scans the whole table (paginated, consistent reads) and looks for: email / username claims \
whose user is missing or past its expiry (orphan) or has another address / username now (stale); live users \
whose claim is missing or expired, or held by another user; codes and sessions of users that no longer exist; \
users and groups without the keys of the `list` index that staff listings query (items written before the \
index existed); unreadable items. Every finding is read again before it is reported, so that a write landing during the scan is \
not taken for an inconsistency. Items past expires_at that DynamoDB's TTL has not removed yet are counted by kind \
(normal: TTL deletes up to ~2 days late) and are not inconsistencies.\n\n\
With --repair, each fix is one conditional write (or one transaction of a conditional write and a check of the \
user item) that re-asserts what the fresh read saw, so it is safe beside live traffic: an orphan claim is deleted \
only if it still names the same user and that user is still missing or expired (users and claims are written in \
one transaction, so such a claim is never a registration in flight, and a registration taking over an expired \
claim rewrites it, which makes the delete fail); a stale claim only if its user is still at the version read (an \
email or username change bumps it); a missing claim is written with the registration's own condition (absent or \
expired) while the user is still at the version read; an address or username held by another live user is left \
for a human; orphan codes and sessions are deleted while their user is still gone; expired items while still \
expired; a user or group that is not listed gets the index keys while it still exists as read. A fix whose condition no longer holds writes nothing and is reported as changed meanwhile: run again.\n\n\
Exit codes: 0 consistent (nothing found, or everything found repaired); 3 inconsistencies found and not (all) \
repaired; 1 store error; 2 usage error.",
    },
    Command {
        name: "jwt-key", operand: None,
        summary: "make a JWT signing key in Secrets Manager, or show one's template parameters",
        opts: &[
            Opt { name: "secret", value: Some("NAME|ARN"), help: "the secret (created when it does not exist)" },
            Opt { name: "kid", value: Some("KID"), help: "the key's kid (default: derived from the public key)" },
            Opt { name: "show", value: None, help: "make nothing: print the parameters of the key the secret holds" },
            Opt { name: "version", value: Some("ID"), help: "with --show: that version of the secret" },
        ],
        details: "Makes a fresh Ed25519 key and stores its PEM in the secret: a new secret, or a new version of an existing one labelled GATEHOUSE_PENDING (AWSCURRENT does not move, so no running function picks it up). Prints the template parameters that name it, ready for samconfig.toml's parameter_overrides:
  JwtSigningKeySecretArn=<the secret's ARN>
  JwtSigningKeyVersionId=<the new version>
  JwtPublicKeys=<kid>=<x>
For a first key, deploy with all three. To rotate, deploy twice: first add the new kid=x to JwtPublicKeys beside the current one (every function then accepts both keys); then set JwtSigningKeyVersionId to the new version. A refresh lifetime later, drop the old kid=x. The private key is never printed. With --show, nothing is made: the parameters of the version named (default AWSCURRENT) are printed.",
    },
    Command {
        name: "create-table", operand: None,
        summary: "create the table (with TTL on expires_at); local emulator only",
        opts: &[],
        details: "Only when AWS_ENDPOINT_URL is set (the local emulator); refused with exit code 2 otherwise \
(the real table is created by the SAM template). Succeeds when the table exists already.",
    },
];

fn main_help() -> String {
    let mut out = String::from(
        "authctl: Gatehouse admin CLI. Manages users directly in the DynamoDB table.\n\n\
         Usage: authctl <command> [options]\n       authctl <command> --help\n\nCommands:\n",
    );
    for c in COMMANDS {
        out.push_str(&format!("  {:<25}{}\n", c.name, c.summary));
    }
    out.push_str(
        "\nEnvironment:\n\
         \x20 TABLE_NAME           the table (default gatehouse)\n\
         \x20 AWS_REGION, AWS_PROFILE, AWS_ACCESS_KEY_ID, ...  the usual AWS credential chain\n\
         \x20 AWS_ENDPOINT_URL     a local emulator, e.g. http://127.0.0.1:4566\n\
         \x20 ARGON2_MEMORY_KIB, ARGON2_ITERATIONS, ARGON2_PARALLELISM  hashing cost (19456, 2, 1)\n\
         \x20 PASSWORD_MIN_LENGTH  password policy (default 8)\n\
         \x20 AUTHCTL_PASSWORD     password for create*/changepassword without a prompt\n\
         \x20 DEFAULT_ADMIN_EMAIL, DEFAULT_ADMIN_PASSWORD  for initdefaultadmin\n\
         \nExit codes:\n\
         \x20 0  done (also: nothing to do, e.g. initdefaultadmin with a superuser present)\n\
         \x20 1  runtime or store error (network, credentials, throttling, missing table)\n\
         \x20 2  usage error: unknown command or option, missing or invalid value, password refused by the\n\
         \x20    policy, passwords that differ, no password and no terminal to ask on\n\
         \x20 3  refused: the email or username is taken, no account has that email, or a wrong code;\n\
         \x20    an unknown group or permission, a codename taken or built in;\n\
         \x20    import-django: records skipped or refused;\n\
         \x20    doctor: inconsistencies found and not (all) repaired\n",
    );
    out
}

fn command_help(c: &Command) -> String {
    let mut out = format!("authctl {}: {}\n\nUsage: authctl {}", c.name, c.summary, c.name);
    for o in c.opts {
        match o.value {
            Some(v) => out.push_str(&format!(" [--{} {v}]", o.name)),
            None => out.push_str(&format!(" [--{}]", o.name)),
        }
    }
    if let Some(operand) = c.operand {
        out.push_str(&format!(" {operand}"));
    }
    out.push_str("\n\nOptions:\n");
    let flag = |o: &Opt| match o.value {
        Some(v) => format!("--{} {v}", o.name),
        None => format!("--{}", o.name),
    };
    // At least two spaces between an option and its help.
    let width = c.opts.iter().map(|o| flag(o).len() + 2).max().unwrap_or(0).max(22);
    for o in c.opts {
        out.push_str(&format!("  {:<width$}{}\n", flag(o), o.help));
    }
    out.push_str(&format!("  {:<width$}{}\n\n", "-h, --help", "this help"));
    out.push_str(c.details);
    out.push_str("\n\nExit codes: 0 done, 1 runtime/store error, 2 usage error, 3 exists/not found/refused.\n");
    out
}

#[tokio::main]
async fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match run(&argv).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(fail) => {
            for line in &fail.lines {
                eprintln!("authctl: {line}");
            }
            ExitCode::from(fail.code)
        }
    }
}

async fn run(argv: &[String]) -> Result<(), Fail> {
    let Some(name) = argv.first() else {
        eprint!("{}", main_help());
        return Err(Fail::usage("no command given"));
    };
    if matches!(name.as_str(), "-h" | "--help" | "help") {
        if let Some(c) = argv.get(1).and_then(|n| COMMANDS.iter().find(|c| c.name == n)) {
            print!("{}", command_help(c));
        } else {
            print!("{}", main_help());
        }
        return Ok(());
    }
    if matches!(name.as_str(), "-V" | "--version") {
        println!("authctl {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let Some(command) = COMMANDS.iter().find(|c| c.name == name) else {
        return Err(Fail::usage(format!("unknown command '{name}' (see authctl --help)")));
    };
    let args = args::parse_with_operands(&argv[1..], command.opts, usize::from(command.operand.is_some()))
        .map_err(|e| Fail::usage(format!("{}: {e} (see authctl {} --help)", command.name, command.name)))?;
    if args.help {
        print!("{}", command_help(command));
        return Ok(());
    }
    // Checked before anything is done, as the functions check it at their start.
    env::audit_retention()?;
    commands::run(command.name, &args).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the help must say, written out by hand (not read from `COMMANDS`, which the help is
    /// made from): every command in order, and the usage line of each.
    const EXPECTED: &[(&str, &str)] = &[
        (
            "createuser",
            "authctl createuser [--email EMAIL] [--password PASSWORD] [--username NAME] [--first-name NAME] [--last-name NAME]",
        ),
        (
            "createstaffuser",
            "authctl createstaffuser [--email EMAIL] [--password PASSWORD] [--username NAME] [--first-name NAME] [--last-name NAME]",
        ),
        (
            "createsuperuser",
            "authctl createsuperuser [--email EMAIL] [--password PASSWORD] [--username NAME] [--first-name NAME] [--last-name NAME]",
        ),
        ("activateuser", "authctl activateuser [--email EMAIL]"),
        ("initdefaultadmin", "authctl initdefaultadmin"),
        ("changepassword", "authctl changepassword [--email EMAIL] [--password PASSWORD]"),
        ("listusers", "authctl listusers [--json]"),
        ("deactivate", "authctl deactivate [--email EMAIL]"),
        ("logout-everywhere", "authctl logout-everywhere [--email EMAIL]"),
        ("mfa-reset", "authctl mfa-reset [--email EMAIL]"),
        ("permissions", "authctl permissions [--json]"),
        ("add-permission", "authctl add-permission [--codename APP.ACTION] [--name NAME] [--description TEXT]"),
        ("remove-permission", "authctl remove-permission [--codename APP.ACTION]"),
        ("grant-group", "authctl grant-group [--email EMAIL] [--group NAME]"),
        ("revoke-group", "authctl revoke-group [--email EMAIL] [--group NAME]"),
        ("grant-permission", "authctl grant-permission [--email EMAIL] [--codename APP.ACTION]"),
        ("revoke-permission", "authctl revoke-permission [--email EMAIL] [--codename APP.ACTION]"),
        ("group-add-permission", "authctl group-add-permission [--group NAME] [--codename APP.ACTION]"),
        ("group-remove-permission", "authctl group-remove-permission [--group NAME] [--codename APP.ACTION]"),
        (
            "import-django",
            "authctl import-django [--dry-run] [--json] [--user-model APP.MODEL] [--unusable-unsupported] FILE",
        ),
        ("doctor", "authctl doctor [--repair] [--json] [--page-size N]"),
        ("jwt-key", "authctl jwt-key [--secret NAME|ARN] [--kid KID] [--show] [--version ID]"),
        ("create-table", "authctl create-table"),
    ];

    #[test]
    fn the_help_lists_exactly_the_expected_commands_usages_and_exit_codes() {
        let main = main_help();
        let listed: Vec<&str> = main
            .split("Commands:\n")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .map(|block| block.lines().filter_map(|l| l.split_whitespace().next()).collect())
            .unwrap_or_default();
        assert_eq!(listed, EXPECTED.iter().map(|(c, _)| *c).collect::<Vec<_>>(), "{main}");
        for code in ["  0  done", "  1  runtime or store error", "  2  usage error", "  3  refused"] {
            assert!(main.contains(code), "exit code line {code:?} missing: {main}");
        }
        assert_eq!(COMMANDS.len(), EXPECTED.len());
        for (c, (name, usage)) in COMMANDS.iter().zip(EXPECTED) {
            let help = command_help(c);
            assert!(help.starts_with(&format!("authctl {name}: ")), "{help}");
            let line = help.lines().find_map(|l| l.strip_prefix("Usage: ")).unwrap_or_default();
            assert_eq!(line, *usage, "{name}");
            // Every option the usage names is one the parser takes: `[--x]` a switch, `[--x V]`
            // with a value.
            let words: Vec<&str> = usage.split(' ').skip(2).collect();
            for (i, word) in words.iter().enumerate().filter(|(_, w)| w.starts_with("[--")) {
                let argv: Vec<String> = match word.strip_suffix(']') {
                    Some(switch) => vec![switch[1..].to_owned()],
                    None => vec![word[1..].to_owned(), "value".to_owned()],
                };
                assert!(args::parse(&argv, c.opts).is_ok(), "{name} {argv:?} (after {:?})", &words[..i]);
            }
            assert!(args::parse(&["--no-such-option".to_owned()], c.opts).is_err());
        }
    }
}
