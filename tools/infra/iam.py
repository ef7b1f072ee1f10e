"""IAM evidence (recorded by the Rust tests, see shared/src/iam.rs) and what each function needs
by it. tools/infra/test_iam.py holds the template's roles to it; run this file to see the
statements each role should have, or to write them into infra/template.yaml:

    make test                                   # records the evidence in .dev/iam-evidence
    .venv/bin/python tools/infra/iam.py         # prints every role's statements
    .venv/bin/python tools/infra/iam.py --write # rewrites them in infra/template.yaml
"""

import collections
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_EVIDENCE = ROOT / ".dev" / "iam-evidence"
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")


def load(directory):
    """(uses: function -> {call}, aws: call -> {(action, resource kind)}) from a directory of
    evidence files."""
    uses, aws = collections.defaultdict(set), collections.defaultdict(set)
    for f in sorted(Path(directory).glob("*.jsonl")):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            if r["kind"] == "use":
                uses[r["function"]].add(r["call"])
            elif r["kind"] == "aws" and r["call"] != "-":
                aws[r["call"]].add((r["action"], r["resource"]))
    return uses, aws


def required(function, uses, aws, hs256, configuration_set, social_secrets=True):
    """(needs: {(action, resource kind)}, calls without AWS evidence) of a function. `keys.verify`
    needs the secret only with HS256 (EdDSA verifies with the public keys); `keys.social` needs
    the providers' secret only when they are in Secrets Manager; a named SES configuration set is
    a resource of every ses:SendEmail."""
    need, unknown = set(), []
    for call in sorted(uses.get(function, ())):
        if call == "keys.verify" and not hs256:
            continue
        if call == "keys.social" and not social_secrets:
            continue
        if call not in aws:
            unknown.append(call)
        need |= aws.get(call, set())
    if configuration_set and ("ses:SendEmail", "ses-identity") in need:
        need.add(("ses:SendEmail", "ses-configuration-set"))
    return need, unknown


# ------------------------------------------------------------------ template statements

EMAIL_RESOURCES = """\
                Resource:
                  - !Sub arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${EmailFrom}
                  - !Sub
                    - arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${Domain}
                    - Domain: !Select [1, !Split ["@", !Ref EmailFrom]]
                  - !If
                    - HasSesConfigurationSet
                    - !Sub arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/${SesConfigurationSet}
                    - !Ref AWS::NoValue
"""


def _actions(actions):
    return "".join(f"                  - {a}\n" for a in sorted(actions))


def _conditional(comment, condition, sid, actions, resource):
    """A statement granted only under a template condition (`!If [condition, statement, NoValue]`)."""
    return (
        f"              # {comment}\n"
        f"              - !If\n                - {condition}\n"
        f"                - Sid: {sid}\n                  Effect: Allow\n                  Action:\n"
        + "".join(f"                    - {a}\n" for a in sorted(actions))
        + f"                  Resource: !Ref {resource}\n"
        "                - !Ref AWS::NoValue\n"
    )


def statements(binary, log_group, uses, aws):
    """The YAML of a role's statements (indented for the template) from the evidence."""
    eddsa, _ = required(binary, uses, aws, hs256=False, configuration_set=False)
    hs256, _ = required(binary, uses, aws, hs256=True, configuration_set=False)
    out = (
        "              - Sid: Logs\n                Effect: Allow\n"
        f"                Action: [{', '.join(LOG_ACTIONS)}]\n"
        f"                Resource: !GetAtt {log_group}.Arn\n"
    )
    table = {a for a, k in hs256 if k == "table"}
    if table:
        out += "              - Sid: Table\n                Effect: Allow\n                Action:\n" + _actions(table)
        out += "                Resource: !GetAtt Table.Arn\n"
    for index in sorted({k for _, k in hs256 if k.startswith("index/")}):
        name = index.split("/", 1)[1]
        acts = {a for a, k in hs256 if k == index}
        out += f"              - Sid: Index{name.title()}\n                Effect: Allow\n                Action:\n" + _actions(acts)
        out += f'                Resource: !Sub "${{Table.Arn}}/index/{name}"\n'
    email = {a for a, k in hs256 if k == "ses-identity"}
    if email:
        out += "              - Sid: Email\n                Effect: Allow\n                Action:\n" + _actions(email)
        out += EMAIL_RESOURCES
    code_secret = {a for a, k in hs256 if k == "code-secret"}
    if code_secret:
        out += "              - Sid: CodeKey\n                Effect: Allow\n                Action:\n" + _actions(code_secret)
        out += "                Resource: !Ref CodeKeySecret\n"
    social_secret = {a for a, k in hs256 if k == "social-secret"}
    if social_secret:
        out += _conditional(
            "The providers' client secrets, when they are in Secrets Manager.",
            "HasSocialSecrets", "SocialClientSecrets", social_secret, "SocialClientSecretsArn",
        )
    secret_always = {a for a, k in eddsa if k == "secret"}
    secret_hs256 = {a for a, k in hs256 if k == "secret"}
    if secret_always:
        out += "              - Sid: SigningKey\n                Effect: Allow\n                Action:\n" + _actions(secret_always)
        out += "                Resource: !Ref JwtSigningKeySecretArn\n"
    elif secret_hs256:
        out += _conditional(
            "HS256: the secret that signs also verifies.", "IsHs256", "SigningKey", secret_hs256, "JwtSigningKeySecretArn"
        )
    return out


ROLE_BLOCK = re.compile(
    r"(?P<head>  (?P<role>\w+)Role:\n    Type: AWS::IAM::Role\n(?:.*\n)*?            Statement:\n)"
    r"(?P<body>(?:.*\n)*?)(?P<tail>      Tags:\n)"
)


def rewrite(template_text, uses, aws):
    """The template with every function role's statements derived from the evidence."""
    binaries = dict(re.findall(r"  (\w+)Function:\n    Type: AWS::Serverless::Function\n(?:.*\n)*?        Binary: (\w+)\n", template_text))

    def replace(m):
        base = m.group("role")
        binary = binaries.get(base)
        if binary is None:
            return m.group(0)
        return m.group("head") + statements(binary, f"{base}LogGroup", uses, aws) + m.group("tail")

    return ROLE_BLOCK.sub(replace, template_text)


def main(argv):
    # The evidence `make test` records, or where GATEHOUSE_IAM_EVIDENCE says (as the tests read it).
    evidence = Path(os.environ.get("GATEHOUSE_IAM_EVIDENCE") or DEFAULT_EVIDENCE)
    uses, aws = load(evidence)
    if not uses:
        sys.exit(f"no evidence in {evidence}: run make test first")
    template = ROOT / "infra" / "template.yaml"
    text = template.read_text()
    new = rewrite(text, uses, aws)
    if "--write" in argv:
        template.write_text(new)
        print(f"{template}: role statements rewritten from {evidence}")
    else:
        sys.stdout.write(new)


if __name__ == "__main__":
    main(sys.argv[1:])
