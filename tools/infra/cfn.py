"""The SAM template as CloudFormation would see it, offline: the SAM transform, the parameter
values a `sam deploy` would pass, and the intrinsic functions evaluated for one set of them.

    transform()                 infra/template.yaml through aws-sam-translator (no credentials, no network)
    parameters(env, overrides)  template defaults < samconfig.toml parameter_overrides < overrides
    parameter_problems(t, p)    what CloudFormation would refuse about a parameter set
    resolve(template, params)   the transformed template with every intrinsic evaluated
    function_env(resolved, id)  the Environment.Variables a function gets
    route_table()               the (method, path, binary) routes of functions/src/routes.rs

`resolve` knows the intrinsics this template uses and raises `ResolveError` on anything else
rather than guessing. Physical names and ARNs of resources are invented in the format AWS uses
(see `Resolver.physical_name`), unless the caller names them in `physical`.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# GATEHOUSE_TEMPLATE: check another template (e.g. an older revision) with the same tests.
TEMPLATE = Path(os.environ.get("GATEHOUSE_TEMPLATE") or ROOT / "infra" / "template.yaml")
SAMCONFIG = ROOT / "samconfig.toml"
ROUTES_RS = ROOT / "functions" / "src" / "routes.rs"

REGION = "us-east-1"
ACCOUNT = "123456789012"  # also moto's default account, so ARNs match the emulator's

# What the managed-policy loader answers (the transform asks only when a function has no Role).
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
}


class ResolveError(ValueError):
    """An intrinsic this resolver does not know, or a reference to nothing."""


# ------------------------------------------------------------------ loading and the transform


def load(path: Path | str = TEMPLATE) -> dict:
    """The template as written (short-form tags such as !Ref read as their long form)."""
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(Path(path).read_text())


class _PolicyLoader:
    def load(self) -> dict[str, str]:
        return dict(MANAGED_POLICIES)


def transform_template(template: dict) -> dict:
    """The SAM transform of a template already loaded (and perhaps changed) by the caller."""
    from samtranslator.translator.transform import transform as sam_transform

    template = copy.deepcopy(template)
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") == "AWS::Serverless::Function":
            # What `sam package` leaves: the built code uploaded to S3.
            resource.setdefault("Properties", {})["CodeUri"] = f"s3://bucket/{logical_id}.zip"
    # The transform asks boto3 for the region (to pick the partition); name it, so nothing
    # depends on the caller's configuration and nothing goes to the network.
    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION
    try:
        return sam_transform(template, {}, _PolicyLoader())
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved


@functools.lru_cache(maxsize=8)
def _transform_cached(path: str, mtime_ns: int) -> dict:
    return transform_template(load(path))


def transform(path: Path | str = TEMPLATE) -> dict:
    """The SAM template transformed to plain CloudFormation, as `sam deploy` would submit it."""
    path = Path(path).resolve()
    return copy.deepcopy(_transform_cached(str(path), path.stat().st_mtime_ns))


# ------------------------------------------------------------------ parameters


def samconfig(path: Path | str = SAMCONFIG) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)


def _section(config: dict, env: str, command: str) -> dict:
    return config.get(env, {}).get(command, {}).get("parameters", {})


def samconfig_overrides(env: str = "default", path: Path | str = SAMCONFIG) -> dict[str, str]:
    """The parameter_overrides of `sam deploy --config-env ENV`, as a dict."""
    config = samconfig(path)
    raw = _section(config, env, "deploy").get("parameter_overrides")
    if raw is None:
        raw = _section(config, env, "global").get("parameter_overrides", "")
    items = raw if isinstance(raw, list) else shlex.split(raw)
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"samconfig.toml [{env}]: parameter override without '=': {item!r}")
        out[key.strip()] = value
    return out


def stack_name(env: str = "default", path: Path | str = SAMCONFIG) -> str:
    config = samconfig(path)
    for command in ("deploy", "global"):
        name = _section(config, env, command).get("stack_name")
        if name:
            return name
    return "gatehouse"


def parameters(env: str = "default", overrides: dict | None = None, template: dict | None = None) -> dict[str, str]:
    """Parameter values for one deploy: the template's defaults, then samconfig.toml's
    parameter_overrides of config env `env` ("default" is dev, or "prod"), then `overrides`.

    Pseudo parameters ride along under their own names (AWS::StackName from samconfig's
    stack_name, AWS::Region, AWS::AccountId ...), so one dict is the whole Ref namespace; a
    caller may override those too."""
    template = template if template is not None else load()
    values: dict[str, str] = dict(PSEUDO_DEFAULTS)
    values["AWS::StackName"] = stack_name(env)
    region = _section(samconfig(), env, "global").get("region") or _section(samconfig(), env, "deploy").get("region")
    if region:
        values["AWS::Region"] = region
    for name, spec in template.get("Parameters", {}).items():
        if "Default" in spec:
            values[name] = _param_string(spec["Default"])
    values.update(samconfig_overrides(env))
    values.update({k: _param_string(v) for k, v in (overrides or {}).items()})
    return values


def _param_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def parameter_problems(template: dict, values: dict[str, str]) -> list[str]:
    """What CloudFormation would refuse in CreateChangeSet about these parameter values: names
    the template lacks, parameters left without a value, and values outside AllowedValues,
    AllowedPattern, Min/MaxLength or Min/MaxValue."""
    declared = template.get("Parameters", {})
    problems = []
    for name in values:
        if not name.startswith("AWS::") and name not in declared:
            problems.append(f"{name}: no such parameter in the template")
    for name, spec in declared.items():
        if name not in values:
            problems.append(f"{name}: no value (the template has no Default and none is given)")
            continue
        value = values[name]
        kind = spec.get("Type", "String")
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [_param_string(a) for a in allowed]:
            problems.append(f"{name}={value!r}: not one of AllowedValues {allowed}")
        pattern = spec.get("AllowedPattern")
        # CloudFormation matches the whole value (Java regex); Python's fullmatch is the same
        # for the patterns used here.
        if pattern is not None and re.fullmatch(pattern, value) is None:
            problems.append(f"{name}={value!r}: does not match AllowedPattern {pattern}")
        if "MinLength" in spec and len(value) < int(spec["MinLength"]):
            problems.append(f"{name}={value!r}: shorter than MinLength {spec['MinLength']}")
        if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
            problems.append(f"{name}={value!r}: longer than MaxLength {spec['MaxLength']}")
        if kind == "Number":
            try:
                number = float(value)
            except ValueError:
                problems.append(f"{name}={value!r}: not a Number")
                continue
            if "MinValue" in spec and number < float(spec["MinValue"]):
                problems.append(f"{name}={value!r}: below MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                problems.append(f"{name}={value!r}: above MaxValue {spec['MaxValue']}")
    return problems


# ------------------------------------------------------------------ intrinsics

PSEUDO_DEFAULTS = {
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Partition": "aws",
    "AWS::StackName": "gatehouse",
    "AWS::URLSuffix": "amazonaws.com",
}


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()

# Properties that name a resource: Ref gives that name when the template sets it.
NAME_PROPERTIES = {
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::CompositeAlarm": "AlarmName",
    "AWS::ApiGatewayV2::Stage": "StageName",
}

INTRINSICS = {
    "Ref", "Fn::Sub", "Fn::GetAtt", "Fn::If", "Fn::Split", "Fn::Select", "Fn::Join", "Fn::Equals", "Fn::Not",
    "Fn::And", "Fn::Or", "Fn::FindInMap", "Fn::Base64", "Fn::GetAZs", "Fn::ImportValue", "Fn::Cidr", "Fn::Length",
    "Fn::ToJsonString", "Fn::Transform", "Fn::ForEach",
}


def is_intrinsic(node: Any) -> bool:
    return isinstance(node, dict) and len(node) == 1 and next(iter(node)) in INTRINSICS


def unresolved(node: Any, path: str = "") -> list[str]:
    """Paths of the intrinsics (or AWS::NoValue) left anywhere in `node`."""
    if node is NO_VALUE:
        return [path or "."]
    if is_intrinsic(node):
        return [f"{path or '.'}: {node}"]
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in unresolved(v, f"{path}.{k}")]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in unresolved(v, f"{path}[{i}]")]
    return []


class Resolver:
    """Evaluates intrinsics against one template and one set of parameter values."""

    def __init__(self, template: dict, params: dict[str, Any], physical: dict[str, str] | None = None):
        self.template = template
        self.params = {**PSEUDO_DEFAULTS, **params}
        self.physical = dict(physical or {})
        self.resources = template.get("Resources", {})
        self.declared = template.get("Parameters", {})
        self._conditions: dict[str, bool] = {}
        self._naming: set[str] = set()

    # -- names and attributes of resources

    def _suffix(self, logical_id: str, n: int = 12) -> str:
        digest = hashlib.sha256(f"{self.params['AWS::StackName']}/{logical_id}".encode()).hexdigest()
        return digest[:n].upper()

    def physical_name(self, logical_id: str) -> str:
        """What `Ref` gives for a resource: the `physical` map's name, else the name property the
        template sets, else a name as CloudFormation generates it (stack-logical-SUFFIX)."""
        if logical_id in self.physical:
            return self.physical[logical_id]
        resource = self.resources.get(logical_id)
        if resource is None:
            raise ResolveError(f"Ref/GetAtt to {logical_id!r}: no such parameter or resource")
        kind = resource.get("Type", "")
        prop = NAME_PROPERTIES.get(kind)
        if prop and prop in resource.get("Properties", {}):
            if logical_id in self._naming:
                raise ResolveError(f"{logical_id}: its name refers to itself")
            self._naming.add(logical_id)
            try:
                name = self.value(resource["Properties"][prop])
            finally:
                self._naming.discard(logical_id)
            if not isinstance(name, str):
                raise ResolveError(f"{logical_id}.{prop} is not a string: {name!r}")
            return name
        if kind == "AWS::ApiGatewayV2::Api":
            return self._suffix(logical_id, 10).lower()
        if kind == "AWS::SecretsManager::Secret":  # Ref gives the ARN
            p = self.params
            return (f"arn:{p['AWS::Partition']}:secretsmanager:{p['AWS::Region']}:{p['AWS::AccountId']}:secret:"
                    f"{p['AWS::StackName']}-{logical_id}-{self._suffix(logical_id, 6)}")
        if kind == "AWS::ApiGatewayV2::Stage":
            return "$default"
        name = f"{self.params['AWS::StackName']}-{logical_id}-{self._suffix(logical_id)}"
        if kind == "AWS::Lambda::Function":
            name = name[-64:] if len(name) > 64 else name
        return name

    def get_att(self, logical_id: str, attribute: str) -> str:
        resource = self.resources.get(logical_id)
        if resource is None:
            raise ResolveError(f"Fn::GetAtt {logical_id}.{attribute}: no such resource")
        kind = resource.get("Type")
        part, region, account = self.params["AWS::Partition"], self.params["AWS::Region"], self.params["AWS::AccountId"]
        name = self.physical_name(logical_id)
        arns = {
            ("AWS::DynamoDB::Table", "Arn"): f"arn:{part}:dynamodb:{region}:{account}:table/{name}",
            ("AWS::Logs::LogGroup", "Arn"): f"arn:{part}:logs:{region}:{account}:log-group:{name}:*",
            ("AWS::Lambda::Function", "Arn"): f"arn:{part}:lambda:{region}:{account}:function:{name}",
            ("AWS::IAM::Role", "Arn"): f"arn:{part}:iam::{account}:role/{name}",
            ("AWS::CloudWatch::Alarm", "Arn"): f"arn:{part}:cloudwatch:{region}:{account}:alarm:{name}",
            ("AWS::CloudWatch::CompositeAlarm", "Arn"): f"arn:{part}:cloudwatch:{region}:{account}:alarm:{name}",
            ("AWS::ApiGatewayV2::Api", "ApiEndpoint"): f"https://{name}.execute-api.{region}.{self.params['AWS::URLSuffix']}",
            ("AWS::ApiGatewayV2::Api", "ApiId"): name,
        }
        if (kind, attribute) not in arns:
            raise ResolveError(f"Fn::GetAtt {logical_id}.{attribute}: attribute of {kind} not known here")
        return arns[(kind, attribute)]

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.declared:
            if name not in self.params:
                raise ResolveError(f"Ref {name}: the parameter has no value")
            value = self.params[name]
            kind = self.declared[name].get("Type", "String")
            if kind == "CommaDelimitedList" or kind.startswith("List<"):
                return value.split(",") if isinstance(value, str) else list(value)
            return value
        if name.startswith("AWS::"):
            if name not in self.params:
                raise ResolveError(f"Ref {name}: pseudo parameter not known here")
            return self.params[name]
        if name in self.resources:
            return self.physical_name(name)
        raise ResolveError(f"Ref {name}: no such parameter or resource")

    # -- conditions

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            conditions = self.template.get("Conditions", {})
            if name not in conditions:
                raise ResolveError(f"Condition {name}: not defined")
            self._conditions[name] = self.truth(conditions[name])
        return self._conditions[name]

    def truth(self, node: Any) -> bool:
        """A condition expression: Fn::Equals / Not / And / Or, or {"Condition": name}."""
        if isinstance(node, dict) and len(node) == 1:
            (key, arg), = node.items()
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Equals":
                a, b = (self.value(x) for x in arg)
                return _param_string(a) == _param_string(b)
            if key == "Fn::Not":
                (inner,) = arg
                return not self.truth(inner)
            if key == "Fn::And":
                return all(self.truth(x) for x in arg)
            if key == "Fn::Or":
                return any(self.truth(x) for x in arg)
        if isinstance(node, bool):
            return node
        raise ResolveError(f"not a condition expression: {node!r}")

    # -- values

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.value(x) for x in node]
            return [x for x in items if x is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key in INTRINSICS:
                return self.intrinsic(key, arg)
        out = {}
        for k, v in node.items():
            resolved = self.value(v)
            if resolved is not NO_VALUE:
                out[k] = resolved
        return out

    def intrinsic(self, key: str, arg: Any) -> Any:
        if key == "Ref":
            return self.ref(self._string(arg, "Ref"))
        if key == "Fn::GetAtt":
            if isinstance(arg, str):
                logical_id, _, attribute = arg.partition(".")
            else:
                logical_id, attribute = arg
                attribute = self._string(self.value(attribute), "Fn::GetAtt attribute")
            return self.get_att(logical_id, attribute)
        if key == "Fn::Sub":
            if isinstance(arg, str):
                return self.sub(arg, {})
            text, variables = arg
            return self.sub(text, {k: self.value(v) for k, v in variables.items()})
        if key == "Fn::If":
            name, yes, no = arg
            return self.value(yes if self.condition(name) else no)
        if key in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or"):
            return self.truth({key: arg})
        if key == "Fn::Split":
            delimiter, text = arg
            return self._string(self.value(text), "Fn::Split").split(delimiter)
        if key == "Fn::Select":
            index, items = arg
            items = self.value(items)
            index = int(self.value(index))
            if not isinstance(items, list) or not 0 <= index < len(items):
                raise ResolveError(f"Fn::Select {index} of {items!r}")
            return items[index]
        if key == "Fn::Join":
            delimiter, items = arg
            items = self.value(items)
            if not isinstance(items, list):
                raise ResolveError(f"Fn::Join of a non-list: {items!r}")
            return delimiter.join(self._string(x, "Fn::Join item") for x in items)
        raise ResolveError(f"{key}: not supported by this resolver ({arg!r})")

    def sub(self, text: str, variables: dict[str, Any]) -> str:
        def replace(m: re.Match) -> str:
            inner = m.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return self._string(variables[inner], f"Fn::Sub ${{{inner}}}")
            if "." in inner and not inner.startswith("AWS::"):
                logical_id, attribute = inner.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self._string(self.ref(inner), f"Fn::Sub ${{{inner}}}")

        return re.sub(r"\$\{([^}]*)\}", replace, text)

    @staticmethod
    def _string(value: Any, what: str) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ResolveError(f"{what}: expected a string, got {value!r}")
        return str(value)

    # -- a whole template

    def resolved_template(self) -> dict:
        out: dict[str, Any] = {}
        for key, section in self.template.items():
            if key == "Resources":
                resources = {}
                for logical_id, resource in section.items():
                    if "Condition" in resource and not self.condition(resource["Condition"]):
                        continue
                    copied = {k: copy.deepcopy(v) for k, v in resource.items() if k != "Properties"}
                    if "Properties" in resource:
                        copied["Properties"] = self.value(resource["Properties"])
                    resources[logical_id] = copied
                out[key] = resources
            elif key == "Outputs":
                outputs = {}
                for name, output in section.items():
                    if "Condition" in output and not self.condition(output["Condition"]):
                        continue
                    outputs[name] = self.value(output)
                out[key] = outputs
            elif key == "Conditions":
                out[key] = {name: self.condition(name) for name in section}
            else:
                out[key] = copy.deepcopy(section)
        return out


def resolve(node: Any, params: dict[str, Any], physical: dict[str, str] | None = None, template: dict | None = None) -> Any:
    """Evaluates the intrinsics of `node` for one parameter set.

    Given a whole (transformed) template and no `template`, returns the template resolved:
    Conditions evaluated to booleans, resources and outputs whose Condition is false dropped,
    every Properties and Output value evaluated. Given a fragment, resolves it in the context of
    `template`. `physical` maps logical ids to physical names (what Ref gives; ARNs from
    GetAtt are built on them); others get a name as CloudFormation would generate it."""
    if template is None:
        if not (isinstance(node, dict) and "Resources" in node):
            raise ResolveError("resolve: a fragment needs the template it belongs to")
        return Resolver(node, params, physical).resolved_template()
    return Resolver(template, params, physical).value(node)


def function_env(resolved: dict, logical_id: str) -> dict[str, Any]:
    """The environment variables a function of a resolved template gets (SAM has merged the
    Globals into each function already)."""
    props = resolved["Resources"][logical_id]["Properties"]
    return dict(props.get("Environment", {}).get("Variables", {}))


def functions(template: dict) -> dict[str, str]:
    """Logical id -> binary name (Metadata.BuildProperties.Binary) of every Lambda function,
    transformed (AWS::Lambda::Function) or not (AWS::Serverless::Function)."""
    out = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") in ("AWS::Lambda::Function", "AWS::Serverless::Function"):
            binary = resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")
            if binary:
                out[logical_id] = binary
    return out


# ------------------------------------------------------------------ the route table

_ROUTE = re.compile(r'^\s*route!\(\s*"([A-Z]+)"\s*,\s*"([^"]+)"\s*,\s*([a-z_][a-z0-9_]*)\s*\)', re.M)


def route_table(path: Path | str = ROUTES_RS) -> list[tuple[str, str, str]]:
    """(METHOD, /path, binary) for every `route!(...)` line of functions/src/routes.rs."""
    return _ROUTE.findall(Path(path).read_text())
