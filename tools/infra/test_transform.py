"""What CloudFormation would get from infra/template.yaml: the SAM transform run offline
(aws-sam-translator), then every intrinsic evaluated for the parameter values `sam deploy` would
pass (samconfig.toml, dev and prod), and assertions on the result: parameters, CORS, routes,
permissions, log groups, roles and IAM scoping, and the functions' environment.

Run by `make test` (`pytest tools/infra`); needs no emulator, no credentials, no network.
"""

import copy
import json
import re

import pytest

import cfn

# A stand-in for the signing-key secret's ARN while samconfig.toml does not name one (the
# parameter has no default; test_samconfig_parameters_are_accepted says so when it is missing).
SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:gatehouse/test/jwt-signing-key-AbC123"

# Parameter sets: (samconfig env, overrides).
PARAM_SETS = {
    "dev": ("default", {}),
    "prod": ("prod", {}),
    "dev-hs256": ("default", {"JwtAlgorithm": "HS256", "JwtPublicKeys": ""}),
    "dev-ses-configuration-set": ("default", {"SesConfigurationSet": "gatehouse-dev"}),
    "dev-social-secrets": (
        "default",
        {"SocialClientSecretsArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:gatehouse/social-AbCdEf"},
    ),
    "prod-two-origins": ("prod", {"CorsAllowOrigins": "https://app.example.com,https://admin.example.com"}),
}

# The HttpApi as it was before CORS moved into the DefinitionBody: given the intrinsic
# AllowOrigins, SAM wrote the !Split itself where the CORS object belongs (headers, methods and
# max-age lost). test_cors_check_fails_on_the_old_shape holds the CORS check to catching it.
OLD_HTTP_API_PROPERTIES = {
    "CorsConfiguration": {
        "AllowOrigins": {"Fn::Split": [",", {"Ref": "CorsAllowOrigins"}]},
        "AllowHeaders": ["authorization", "content-type"],
        "AllowMethods": ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        "MaxAge": 600,
    },
}


@pytest.fixture(scope="module")
def source():
    return cfn.load()


@pytest.fixture(scope="module")
def transformed():
    return cfn.transform()


@pytest.fixture(scope="module")
def routes():
    table = cfn.route_table()
    assert len(table) >= 30, f"parsed only {len(table)} routes from {cfn.ROUTES_RS}"
    return table


def param_values(name, template):
    env, overrides = PARAM_SETS[name]
    values = cfn.parameters(env, overrides, template)
    values.setdefault("JwtSigningKeySecretArn", SECRET_ARN)
    return values


@pytest.fixture(scope="module", params=list(PARAM_SETS))
def deployed(request, transformed):
    """(set name, parameter values, resolved template) for each parameter set."""
    values = param_values(request.param, transformed)
    return request.param, values, cfn.resolve(transformed, values)


def body(template):
    return template["Resources"]["HttpApi"]["Properties"]["Body"]


def api_logical_id(template):
    apis = [k for k, r in template["Resources"].items() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    assert apis == ["HttpApi"], apis
    return apis[0]


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize("env", ["default", "prod"])
def test_samconfig_parameters_are_accepted(env, source):
    """`sam deploy --config-env ENV` passes parameter_overrides as they are: CloudFormation
    refuses a name the template lacks, a required parameter left without a value, and a value
    outside its constraints."""
    values = cfn.parameters(env, template=source)
    problems = cfn.parameter_problems(source, values)
    assert not problems, f"samconfig.toml [{env}]:\n" + "\n".join(problems)


def test_route_table_parses(routes):
    assert all(path.startswith("/") for _, path, _ in routes)
    assert len(set((m, p) for m, p, _ in routes)) == len(routes), "a route is listed twice"


# ------------------------------------------------------------------ CORS


def cors_problems(api_body, origins, methods):
    """What is wrong with the resolved x-amazon-apigateway-cors of an API body."""
    cors = api_body.get("x-amazon-apigateway-cors")
    if not isinstance(cors, dict):
        return [f"x-amazon-apigateway-cors is not an object: {cors!r}"]
    problems = []
    if cors.get("allowOrigins") != origins:
        problems.append(f"allowOrigins {cors.get('allowOrigins')!r}, expected {origins!r}")
    for origin in cors.get("allowOrigins") or []:
        if not (isinstance(origin, str) and re.fullmatch(r"\*|https?://[^\s/,]+", origin)):
            problems.append(f"allowOrigins: {origin!r} is not an origin")
    headers = {h.lower() for h in cors.get("allowHeaders") or []}
    for h in ("authorization", "content-type"):
        if h not in headers:
            problems.append(f"allowHeaders lacks {h}")
    missing = set(methods) - {m.upper() for m in cors.get("allowMethods") or []}
    if missing:
        problems.append(f"allowMethods lacks {sorted(missing)}")
    if "retry-after" not in {h.lower() for h in cors.get("exposeHeaders") or []}:
        problems.append("exposeHeaders lacks retry-after")
    if not (isinstance(cors.get("maxAge"), int) and cors["maxAge"] > 0):
        problems.append(f"maxAge {cors.get('maxAge')!r}")
    return problems


def test_cors_configuration(deployed, routes):
    name, values, resolved = deployed
    origins = values["CorsAllowOrigins"].split(",")
    if name == "prod":
        assert origins == ["https://app.example.com"]
    if name == "prod-two-origins":
        assert len(origins) == 2
    methods = {m for m, _, _ in routes}
    problems = cors_problems(body(resolved), origins, methods)
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_cors_check_fails_on_the_old_shape(source, routes):
    old = copy.deepcopy(source)
    props = old["Resources"]["HttpApi"]["Properties"]
    props.pop("DefinitionBody", None)
    props.update(copy.deepcopy(OLD_HTTP_API_PROPERTIES))
    transformed = cfn.transform_template(old)
    values = param_values("prod", transformed)
    resolved = cfn.resolve(transformed, values)
    problems = cors_problems(body(resolved), ["https://app.example.com"], {m for m, _, _ in routes})
    assert problems, "the CORS check passes the CorsConfiguration shape SAM mangles"


# ------------------------------------------------------------------ routes


def test_every_route_reaches_its_function(transformed, routes):
    binaries = cfn.functions(transformed)
    paths = body(transformed)["paths"]
    resolved = cfn.resolve(transformed, param_values("dev", transformed))
    rpaths = body(resolved)["paths"]
    problems = []
    for method, path, function in routes:
        op = paths.get(path, {}).get(method.lower())
        if op is None:
            problems.append(f"{method} {path}: not in the API body")
            continue
        uri = op["x-amazon-apigateway-integration"]["uri"]
        text = uri["Fn::Sub"] if isinstance(uri, dict) else uri
        targets = re.findall(r"\$\{(\w+)\.Arn\}", text if isinstance(text, str) else text[0])
        if len(targets) != 1 or binaries.get(targets[0]) != function:
            problems.append(f"{method} {path}: integration {text!r} is not function {function}")
            continue
        function_arn = cfn.resolve({"Fn::GetAtt": [targets[0], "Arn"]}, param_values("dev", transformed), template=transformed)
        want = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{function_arn}/invocations"
        got = rpaths[path][method.lower()]["x-amazon-apigateway-integration"]["uri"]
        if got != want:
            problems.append(f"{method} {path}: resolved integration {got}, expected {want}")
        if op["x-amazon-apigateway-integration"].get("payloadFormatVersion") != "2.0":
            problems.append(f"{method} {path}: payloadFormatVersion is not 2.0")
    assert not problems, "\n".join(problems)


def test_no_route_path_ends_in_a_slash(source, transformed, routes):
    events = [
        e["Properties"]["Path"]
        for r in source["Resources"].values()
        if r["Type"] == "AWS::Serverless::Function"
        for e in r["Properties"].get("Events", {}).values()
        if e["Type"] == "HttpApi"
    ]
    paths = list(body(transformed)["paths"]) + events + [p for _, p, _ in routes]
    assert [p for p in paths if p != "/" and p.endswith("/")] == []


def test_default_route_goes_to_fallback(transformed):
    default = body(transformed)["paths"].get("$default", {})
    assert list(default) == ["x-amazon-apigateway-any-method"], default
    integration = default["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]
    targets = re.findall(r"\$\{(\w+)\.Arn\}", integration["uri"]["Fn::Sub"])
    assert [cfn.functions(transformed).get(t) for t in targets] == ["fallback"]


def test_no_path_outside_the_route_table(transformed, routes):
    table = {(m.lower(), p) for m, p, _ in routes}
    extra = [
        f"{method.upper()} {path}"
        for path, ops in body(transformed)["paths"].items()
        if path != "$default"
        for method in ops
        if (method, path) not in table
    ]
    assert extra == []


def test_every_http_api_event_may_invoke_its_function(source, transformed):
    values = param_values("dev", transformed)
    resolver = cfn.Resolver(transformed, values)
    api_id = resolver.physical_name(api_logical_id(transformed))
    problems = []
    for fn, resource in source["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event_name, event in resource["Properties"].get("Events", {}).items():
            if event["Type"] != "HttpApi":
                continue
            props = event["Properties"]
            if props.get("ApiId") != {"Ref": "HttpApi"}:
                problems.append(f"{fn}.{event_name}: ApiId is not the template's HttpApi")
            permission = transformed["Resources"].get(f"{fn}{event_name}Permission")
            if permission is None or permission["Type"] != "AWS::Lambda::Permission":
                problems.append(f"{fn}.{event_name}: no {fn}{event_name}Permission")
                continue
            p = resolver.value(permission["Properties"])
            if p["FunctionName"] != resolver.physical_name(fn) or p["Action"] != "lambda:InvokeFunction":
                problems.append(f"{fn}{event_name}Permission: {p}")
            if p["Principal"] != "apigateway.amazonaws.com":
                problems.append(f"{fn}{event_name}Permission: principal {p['Principal']}")
            if props["Path"] == "$default":
                want = f"arn:aws:execute-api:us-east-1:123456789012:{api_id}/*/*"
            else:
                route = re.sub(r"\{[^}]+\}", "*", props["Path"])
                want = f"arn:aws:execute-api:us-east-1:123456789012:{api_id}/*/{props['Method'].upper()}{route}"
            if p["SourceArn"] != want:
                problems.append(f"{fn}{event_name}Permission: SourceArn {p['SourceArn']}, expected {want}")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ functions, logs, roles


def lambda_functions(template):
    return {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}


def test_functions_log_to_their_own_log_group(transformed, source):
    values = param_values("prod", transformed)
    resolved = cfn.resolve(transformed, values)
    problems, seen = [], {}
    for fn, resource in lambda_functions(transformed).items():
        group = resource["Properties"].get("LoggingConfig", {}).get("LogGroup")
        if not (isinstance(group, dict) and set(group) == {"Ref"}):
            problems.append(f"{fn}: LoggingConfig.LogGroup is {group!r}, not a Ref to a log group of the template")
            continue
        target = transformed["Resources"].get(group["Ref"], {})
        if target.get("Type") != "AWS::Logs::LogGroup":
            problems.append(f"{fn}: LoggingConfig.LogGroup refers to {group['Ref']}, not an AWS::Logs::LogGroup")
            continue
        retention = resolved["Resources"][group["Ref"]]["Properties"].get("RetentionInDays")
        if retention in (None, "", 0, "0"):
            problems.append(f"{group['Ref']}: no RetentionInDays")
        if group["Ref"] in seen:
            problems.append(f"{fn} and {seen[group['Ref']]} share log group {group['Ref']}")
        seen[group["Ref"]] = fn
        name = resolved["Resources"][group["Ref"]]["Properties"].get("LogGroupName", "")
        if resolved["Resources"][fn]["Properties"]["LoggingConfig"]["LogGroup"] != name:
            problems.append(f"{fn}: LoggingConfig.LogGroup does not resolve to {name}")
    assert not problems, "\n".join(problems)
    assert len(seen) == len(cfn.functions(source))


def role_of(function_resource):
    role = function_resource["Properties"].get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:
        target, attribute = role["Fn::GetAtt"] if isinstance(role["Fn::GetAtt"], list) else role["Fn::GetAtt"].split(".")
        if attribute == "Arn":
            return target
    return None


def test_functions_have_explicit_roles(transformed, source):
    problems, users = [], {}
    for fn, resource in lambda_functions(transformed).items():
        role = role_of(resource)
        if role is None:
            problems.append(f"{fn}: Role is {resource['Properties'].get('Role')!r}, not !GetAtt <Role>.Arn")
            continue
        if source["Resources"].get(role, {}).get("Type") != "AWS::IAM::Role":
            problems.append(f"{fn}: role {role} is not an AWS::IAM::Role written in the template (SAM-generated?)")
        props = transformed["Resources"][role]["Properties"]
        if props.get("ManagedPolicyArns"):
            problems.append(f"{role}: ManagedPolicyArns {props['ManagedPolicyArns']}")
        if role in users:
            problems.append(f"{fn} and {users[role]} share role {role}")
        users[role] = fn
    generated = [k for k, r in transformed["Resources"].items() if r["Type"] == "AWS::IAM::Role" and k not in source["Resources"]]
    assert not problems, "\n".join(problems)
    assert generated == [], "roles generated by SAM"


def statements(document):
    found = document.get("Statement", [])
    return found if isinstance(found, list) else [found]


def as_list(value):
    return value if isinstance(value, list) else [value]


def test_iam_statements_are_scoped(deployed, transformed):
    name, values, resolved = deployed
    res = resolved["Resources"]
    resolver = cfn.Resolver(transformed, values)
    table_arn = resolver.get_att("Table", "Arn")
    indexes = [
        i["IndexName"]
        for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes")
        for i in res["Table"]["Properties"].get(key, [])
    ]
    ses = f"arn:aws:ses:{values['AWS::Region']}:{values['AWS::AccountId']}"
    shared = {table_arn, *(f"{table_arn}/index/{i}" for i in indexes), values["JwtSigningKeySecretArn"], resolver.ref("CodeKeySecret")}
    shared |= {f"{ses}:identity/{values['EmailFrom']}", f"{ses}:identity/{values['EmailFrom'].split('@', 1)[1]}"}
    if values.get("SesConfigurationSet"):
        shared.add(f"{ses}:configuration-set/{values['SesConfigurationSet']}")
    if values.get("SocialClientSecretsArn"):
        shared.add(values["SocialClientSecretsArn"])

    owners, problems = {}, []  # role -> (function, ARN of its log group or None)
    for fn, resource in lambda_functions(transformed).items():
        group = resource["Properties"].get("LoggingConfig", {}).get("LogGroup")
        log_arn = resolver.get_att(group["Ref"], "Arn") if isinstance(group, dict) and "Ref" in group else None
        owners[role_of(resource)] = (fn, log_arn)

    for logical_id, resource in res.items():
        kind, props = resource["Type"], resource.get("Properties", {})
        documents = []
        if kind == "AWS::IAM::Role":
            for s in statements(props.get("AssumeRolePolicyDocument", {})):
                principal = s.get("Principal", {})
                if as_list(s.get("Action")) != ["sts:AssumeRole"] or set(principal) != {"Service"} or as_list(principal["Service"]) != ["lambda.amazonaws.com"]:
                    problems.append(f"{logical_id}: trust policy {s}")
            documents = [(logical_id, p["PolicyDocument"]) for p in props.get("Policies", [])]
        elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
            problems.append(f"{logical_id}: a separate {kind}; this check expects policies inline in each role")
        leftovers = cfn.unresolved(props)
        if kind.startswith("AWS::IAM::") and leftovers:
            problems.append(f"{logical_id}: unresolved {leftovers}")
        for role, document in documents:
            owner = owners.get(role)
            if owner is None:
                problems.append(f"{role}: no function uses this role")
                continue
            allowed = shared | {owner[1]}
            for s in statements(document):
                where = f"{role} {s.get('Sid', '')}".strip()
                for key in ("NotAction", "NotResource", "NotPrincipal"):
                    if key in s:
                        problems.append(f"{where}: {key}")
                for action in as_list(s.get("Action", [])):
                    if action == "*" or action.endswith(":*") or "*" in action:
                        problems.append(f"{where}: Action {action}")
                for arn in as_list(s.get("Resource", [])):
                    if arn not in allowed:
                        problems.append(f"{where}: Resource {arn} is none of the table, its indexes, its own log group, the SES identities/configuration set, the signing-key, code-key or providers' secret")
    assert not problems, f"{name}:\n" + "\n".join(problems)


# ------------------------------------------------------------------ environment

PEM = re.compile(r"-----BEGIN [A-Z ]+-----")
BARE_ADDRESS = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+")


def test_function_environment(deployed, transformed):
    name, values, resolved = deployed
    table = cfn.Resolver(transformed, values).physical_name("Table")
    problems = []
    for fn in lambda_functions(transformed):
        env = cfn.function_env(resolved, fn)
        left = cfn.unresolved(env)
        if left:
            problems.append(f"{fn}: unresolved {left}")
        for key, value in env.items():
            if not isinstance(value, str):
                problems.append(f"{fn}: {key} is {type(value).__name__} {value!r}, not a string")
                continue
            if PEM.search(value) or "{{resolve:" in value:
                problems.append(f"{fn}: {key} holds a secret (a PEM key or a dynamic reference)")
        if not BARE_ADDRESS.fullmatch(str(env.get("EMAIL_FROM", ""))):
            problems.append(f"{fn}: EMAIL_FROM {env.get('EMAIL_FROM')!r} is not a bare address")
        if env.get("TABLE_NAME") != table:
            problems.append(f"{fn}: TABLE_NAME {env.get('TABLE_NAME')!r}, not the stack's table")
        # Lambda refuses a function whose variables exceed 4 KB in all.
        size = sum(len(k.encode()) + len(str(v).encode()) for k, v in env.items())
        if size > 4096:
            problems.append(f"{fn}: environment is {size} bytes, over Lambda's 4 KB")
    assert not problems, f"{name}:\n" + "\n".join(problems)


def test_resolved_template_is_complete(deployed):
    """Nothing in the resources or outputs is left unevaluated for this parameter set."""
    name, _, resolved = deployed
    assert cfn.unresolved(resolved["Resources"]) == [], name
    assert cfn.unresolved(resolved.get("Outputs", {})) == [], name
    json.dumps(resolved)  # plain data all the way down


def test_within_cloudformation_quotas(source, transformed):
    """CloudFormation's per-template quotas: 500 resources, 200 parameters, 200 outputs, and a
    template of at most 1 MB (uploaded through S3) once SAM has expanded it."""
    assert len(transformed["Resources"]) <= 500, len(transformed["Resources"])
    assert len(source.get("Parameters", {})) <= 200
    assert len(source.get("Outputs", {})) <= 200
    size = len(json.dumps(transformed, separators=(",", ":")).encode())
    assert size <= 1_000_000, f"the transformed template is {size} bytes"
