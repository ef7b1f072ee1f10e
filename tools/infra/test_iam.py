"""Least privilege, derived from the code: every function's IAM role in the transformed template
grants exactly what its handler was seen to need, for each parameter set (dev, prod, HS256, an
SES configuration set). Nothing missing (a deploy would answer 503 where AWS refuses), nothing
unused.

The evidence comes from the Rust test suite run just before (tools/test.sh sets
GATEHOUSE_IAM_EVIDENCE; see shared/src/iam.rs):
- "use" records: every port call (store operation, email sent, signing key asked for) a function
  made while the handler, fault and hostile suites routed requests to it;
- "aws" records: the IAM actions, by AWS's rules, of the AWS operations each port call sent to the
  emulator (store contract suite, DynamoDB handler and fault suites, SES and Secrets Manager
  tests). A `TransactWriteItems` counts as the actions of its items.

Rules that are configuration rather than code: `keys.verify` (the signing key asked for to verify
a token) needs the secret only with HS256; `keys.social` (the providers' client secrets) needs
their secret only when they are in Secrets Manager (SocialClientSecretsArn); an SES configuration set, when named, is a resource
of every `ses:SendEmail`. Every function also writes its own log group (logs:CreateLogStream,
logs:PutLogEvents on that group only).
"""

import collections
import os

import pytest

import cfn
import iam
from test_transform import as_list, lambda_functions, param_values, role_of, statements

EVIDENCE = os.environ.get("GATEHOUSE_IAM_EVIDENCE")
IAM_SETS = ["dev", "prod", "dev-hs256", "dev-ses-configuration-set", "dev-social-secrets"]


@pytest.fixture(scope="module")
def evidence():
    if not EVIDENCE:
        pytest.fail("GATEHOUSE_IAM_EVIDENCE is not set: run through `make test`, which records the evidence first")
    uses, aws = iam.load(EVIDENCE)
    # Guards the guard: evidence of a partial or skipped run must not pass as "needs nothing".
    services = {action.split(":")[0] for acts in aws.values() for action, _ in acts}
    assert len(uses) >= 20, f"use records for only {sorted(uses)} in {EVIDENCE}"
    assert {"dynamodb", "ses", "secretsmanager"} <= services, f"AWS evidence only for {services} in {EVIDENCE}"
    return uses, aws


def kinds(values, resolver, log_group_arn):
    """Resource ARN -> kind, for the resources a role may name."""
    table = resolver.get_att("Table", "Arn")
    ses = f"arn:aws:ses:{values['AWS::Region']}:{values['AWS::AccountId']}"
    out = {
        table: "table",
        values["JwtSigningKeySecretArn"]: "secret",
        resolver.ref("CodeKeySecret"): "code-secret",
        f"{ses}:identity/{values['EmailFrom']}": "ses-identity",
        f"{ses}:identity/{values['EmailFrom'].split('@', 1)[1]}": "ses-identity",
        log_group_arn: "log-group",
    }
    if values.get("SesConfigurationSet"):
        out[f"{ses}:configuration-set/{values['SesConfigurationSet']}"] = "ses-configuration-set"
    if values.get("SocialClientSecretsArn"):
        out[values["SocialClientSecretsArn"]] = "social-secret"
    return out, table


def granted(role_props, arn_kind, table_arn):
    """(action, resource kind) pairs a role's inline policies allow, the ARNs of each SES
    grant, and problems of shape."""
    grants, ses_arns, problems = set(), collections.defaultdict(set), []
    for policy in role_props.get("Policies", []):
        for s in statements(policy["PolicyDocument"]):
            if s.get("Effect") != "Allow" or "Condition" in s:
                problems.append(f"statement {s.get('Sid', '')}: only unconditional Allow statements are expected")
            for arn in as_list(s.get("Resource", [])):
                kind = arn_kind.get(arn)
                if kind is None and isinstance(arn, str) and arn.startswith(f"{table_arn}/index/"):
                    kind = "index/" + arn[len(f"{table_arn}/index/"):]
                if kind is None:
                    problems.append(f"statement {s.get('Sid', '')}: resource {arn} is not one this check knows")
                    continue
                for action in as_list(s.get("Action", [])):
                    grants.add((action, kind))
                    if kind == "ses-identity":
                        ses_arns[action].add(arn)
    return grants, ses_arns, problems


def hint(function, pairs):
    return "; ".join(f"{a} on {k}" for a, k in sorted(pairs)) or "nothing"


@pytest.mark.parametrize("set_name", IAM_SETS)
def test_every_role_grants_exactly_what_its_function_was_seen_to_need(set_name, evidence):
    uses, aws = evidence
    transformed = cfn.transform()
    values = param_values(set_name, transformed)
    resolved = cfn.resolve(transformed, values)
    resolver = cfn.Resolver(transformed, values)
    binaries = cfn.functions(transformed)
    problems = []
    for logical_id, resource in lambda_functions(transformed).items():
        binary = binaries[logical_id]
        group = resource["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        arn_kind, table_arn = kinds(values, resolver, resolver.get_att(group, "Arn"))
        role = role_of(resource)
        grants, ses_arns, shape = granted(resolved["Resources"][role]["Properties"], arn_kind, table_arn)
        problems += [f"{binary} ({role}): {p}" for p in shape]
        logs = {(a, k) for a, k in grants if k == "log-group"}
        if logs != {(a, "log-group") for a in iam.LOG_ACTIONS}:
            problems.append(f"{binary}: on its log group it may {hint(binary, logs)}; want {sorted(iam.LOG_ACTIONS)}")
        grants -= logs
        need, unknown = iam.required(
            binary,
            uses,
            aws,
            hs256=values["JwtAlgorithm"] == "HS256",
            configuration_set=bool(values.get("SesConfigurationSet")),
            social_secrets=bool(values.get("SocialClientSecretsArn")),
        )
        if unknown:
            problems.append(
                f"{binary}: no emulator test shows what AWS calls these make, so their IAM actions are unknown: "
                f"{unknown} (exercise them through a store/mailer/key source with the iam::Interceptor)"
            )
        if need - grants:
            problems.append(
                f"{binary} ({role}) lacks: {hint(binary, need - grants)} "
                "(`.venv/bin/python tools/infra/iam.py --write` derives the roles from the evidence)"
            )
        if grants - need:
            problems.append(f"{binary} ({role}) is granted but never uses: {hint(binary, grants - need)}")
        for action, arns in ses_arns.items():
            if len(arns) != 2:
                problems.append(f"{binary}: {action} must name both the EmailFrom identity and its domain's: {sorted(arns)}")
    assert not problems, f"{set_name}:\n" + "\n".join(problems)


def test_evidence_names_only_real_functions(evidence):
    uses, _ = evidence
    binaries = set(cfn.functions(cfn.transform()).values())
    assert set(uses) <= binaries, f"evidence for unknown functions: {set(uses) - binaries}"
