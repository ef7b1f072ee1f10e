"""A Django 5.2 + djoser project's users, as a team moving to Gatehouse has them, dumped the way
README's "Moving from djoser" says: `manage.py dumpdata auth.user auth.group --natural-foreign
--natural-primary`.

Usage: make_dump.py OUTDIR. Writes OUTDIR/dump.json (what authctl import-django reads) and
OUTDIR/expected.json (per account: its password, whether Django lets it log in, and
`user.has_perm` for every permission asked), which tools/blackbox/test_django_import.py holds the
imported accounts to.

One account per password hasher Django ships (its current defaults: PBKDF2 at 1,000,000
iterations, argon2id, bcrypt_sha256, scrypt; and the older pbkdf2_sha1, plain bcrypt, argon2i),
made by Django itself; groups with permissions, a direct permission, a custom permission, a
superuser, an inactive account and one with an unusable password.
"""

import json
import os
import sys
import tempfile

import django
from django.conf import settings

HASHERS = [
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.BCryptPasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]


def configure(directory):
    settings.configure(
        DEBUG=False,
        SECRET_KEY="tools-django-make-dump",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "rest_framework",
            "djoser",
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(directory, "db.sqlite3")}},
        PASSWORD_HASHERS=HASHERS,
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    )
    django.setup()


def argon2i(password):
    """What Django stored for argon2 before argon2id became its default: argon2i."""
    import argon2

    hasher = argon2.PasswordHasher(time_cost=2, memory_cost=512, parallelism=2, type=argon2.Type.I)
    return "argon2" + hasher.hash(password)


def main(outdir):
    os.makedirs(outdir, exist_ok=True)
    configure(tempfile.mkdtemp(dir=outdir))
    from django.contrib.auth.hashers import check_password, make_password
    from django.contrib.auth.models import Group, Permission, User
    from django.contrib.contenttypes.models import ContentType
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    user_type = ContentType.objects.get_for_model(User)
    refund = Permission.objects.create(codename="refund_order", name="Can refund orders", content_type=user_type)
    support = Group.objects.create(name="support")
    support.permissions.add(Permission.objects.get(codename="view_user"), refund)
    editors = Group.objects.create(name="editors")
    editors.permissions.add(Permission.objects.get(codename="change_group"))

    accounts = []

    def account(email, password, hasher=None, stored=None, **flags):
        user = User(username=email.split("@")[0], email=email, first_name=email[:3].title(), **flags)
        user.password = stored if stored is not None else make_password(password, hasher=hasher)
        user.save()
        accounts.append((user, password))
        return user

    pbkdf2 = account("pbkdf2@example.com", "Pbkdf2 sha256 passphrase", "pbkdf2_sha256")
    pbkdf2.groups.add(support)
    account("pbkdf2-sha1@example.com", "an older pbkdf2 sha1 one", "pbkdf2_sha1").groups.add(editors)
    argon = account("argon2id@example.com", "argon2 is the default now", "argon2")
    argon.user_permissions.add(refund)
    account("argon2i@example.com", "argon2i from long ago", stored=argon2i("argon2i from long ago"))
    account("bcrypt-sha256@example.com", "b" * 80 + " longer than bcrypt's 72", "bcrypt_sha256").groups.add(
        support, editors
    )
    account("bcrypt@example.com", "plain bcrypt passphrase", "bcrypt")
    account("scrypt@example.com", "scrypt memory hard pass", "scrypt")
    account("root@example.com", "the superuser's passphrase", "pbkdf2_sha256", is_staff=True, is_superuser=True)
    account("staff@example.com", "a staff member's passphrase", "argon2", is_staff=True).groups.add(editors)
    account("gone@example.com", "inactive accounts stay out", "pbkdf2_sha256", is_active=False).groups.add(support)
    unusable = account("unusable@example.com", "no password works here", stored=make_password(None))
    assert not unusable.has_usable_password()

    asked = [
        "auth.view_user",
        "auth.change_user",
        "auth.refund_order",
        "auth.change_group",
        "auth.delete_permission",
        "shop.no_such_thing",
    ]
    expected = {}
    for user, password in accounts:
        user = User.objects.get(pk=user.pk)  # permission caches start empty
        expected[user.email] = {
            "password": password,
            # hashers.check_password, not user.check_password: that one would upgrade the hash to
            # the first hasher and save it, and the dump would hold no older format.
            "logs_in": user.is_active and check_password(password, user.password),
            "is_active": user.is_active,
            "usable": user.has_usable_password(),
            "algorithm": user.password.split("$", 1)[0] if user.has_usable_password() else "unusable",
            "has_perm": {perm: user.has_perm(perm) for perm in asked},
        }
    with open(os.path.join(outdir, "dump.json"), "w", encoding="utf-8") as out:
        call_command("dumpdata", "auth.user", "auth.group", natural_foreign=True, natural_primary=True, indent=1, stdout=out)
    with open(os.path.join(outdir, "expected.json"), "w", encoding="utf-8") as out:
        json.dump(expected, out, indent=1)
    print(f"{len(accounts)} accounts, {Group.objects.count()} groups -> {outdir}/dump.json")


if __name__ == "__main__":
    main(sys.argv[1])
