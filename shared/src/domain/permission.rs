//! Permissions: the registry's entries, named as Django names them (`app_label.codename`).

/// A registered permission. Groups (and so their members) may hold only registered ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    /// `app_label.codename`, as Django's `user.has_perm` takes it: `auth.view_user`.
    pub codename: String,
    /// A human-readable name ("Can view user").
    pub name: String,
    pub description: String,
    /// Made when the permission is registered ([`BUILTIN_ID`] for built-in ones): a user's own
    /// grant names it, so a grant of a permission deleted and registered again grants nothing.
    pub id: String,
}

/// The id of every built-in permission.
pub const BUILTIN_ID: &str = "builtin";

/// Longest app label and longest codename Django stores (100 characters each).
const PART_MAX: usize = 100;

impl Permission {
    /// Whether `codename` is `app_label.action`: an app label (a Python identifier: ASCII letters,
    /// digits and `_`, not starting with a digit) and an action (ASCII letters, digits, `_` and
    /// `-`), each 1 to 100 characters. Django's own are lower case (`auth.add_user`); case is kept.
    pub fn valid_codename(codename: &str) -> bool {
        let Some((app, action)) = codename.split_once('.') else {
            return false;
        };
        let app_ok = !app.is_empty()
            && app.len() <= PART_MAX
            && !app.starts_with(|c: char| c.is_ascii_digit())
            && app.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let action_ok = !action.is_empty()
            && action.len() <= PART_MAX
            && action.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        app_ok && action_ok
    }

    /// Whether `codename` is one of [`BUILTIN`]: registered from the start, never changed or
    /// deleted (the admin API's own access depends on them).
    pub fn is_builtin(codename: &str) -> bool {
        BUILTIN.iter().any(|(c, _)| *c == codename)
    }

    /// The built-in permission `codename`, if it is one.
    pub fn builtin(codename: &str) -> Option<Permission> {
        BUILTIN.iter().find(|(c, _)| *c == codename).map(|(c, name)| Permission {
            codename: (*c).to_owned(),
            name: (*name).to_owned(),
            description: String::new(),
            id: BUILTIN_ID.to_owned(),
        })
    }

    /// Every built-in permission, in [`BUILTIN`]'s order.
    pub fn builtins() -> impl Iterator<Item = Permission> {
        BUILTIN.iter().filter_map(|(c, _)| Self::builtin(c))
    }
}

/// The permissions of the admin API's own routes, with Django's names: each admin route needs a
/// superuser, or a staff member holding its permission.
pub const BUILTIN: &[(&str, &str)] = &[
    ("auth.view_user", "Can view user"),
    ("auth.add_user", "Can add user"),
    ("auth.change_user", "Can change user"),
    ("auth.delete_user", "Can delete user"),
    ("auth.view_group", "Can view group"),
    ("auth.add_group", "Can add group"),
    ("auth.change_group", "Can change group"),
    ("auth.delete_group", "Can delete group"),
    ("auth.view_permission", "Can view permission"),
    ("auth.add_permission", "Can add permission"),
    ("auth.change_permission", "Can change permission"),
    ("auth.delete_permission", "Can delete permission"),
    ("auth.view_auditentry", "Can view audit entry"),
];

#[cfg(test)]
mod tests {
    use super::Permission;

    #[test]
    fn codenames_are_app_label_dot_action() {
        let good = ["auth.view_user", "shop.refund_order", "_x.y", "App1.Do-It", &format!("a.{}", "b".repeat(100))];
        for c in good {
            assert!(Permission::valid_codename(c), "{c} should be valid");
        }
        let bad = [
            "",
            "auth",
            ".view",
            "auth.",
            "1app.view",
            "auth.view user",
            "auth/view.x",
            "auth.view/x",
            "ä.view",
            &format!("a.{}", "b".repeat(101)),
            &format!("{}.b", "a".repeat(101)),
        ];
        for c in bad {
            assert!(!Permission::valid_codename(c), "{c:?} should be refused");
        }
    }

    #[test]
    fn builtins_are_valid_registered_and_unique() {
        let all: Vec<Permission> = Permission::builtins().collect();
        assert_eq!(all.len(), super::BUILTIN.len());
        for p in &all {
            assert!(Permission::valid_codename(&p.codename), "{}", p.codename);
            assert!(Permission::is_builtin(&p.codename));
            assert_eq!(all.iter().filter(|q| q.codename == p.codename).count(), 1);
        }
        assert!(!Permission::is_builtin("auth.view_users"));
        assert!(Permission::builtin("shop.refund").is_none());
    }
}
