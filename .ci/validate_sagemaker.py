#!/usr/bin/env python3
"""Holds the request bodies of `spotsim recommend --emit sagemaker DIR` to the
AWS SDK's own service models (botocore's `sagemaker`,
`application-autoscaling`, and `cloudwatch` for the alarm that wakes a
component from zero copies), so that a field name or type SageMaker would
reject fails the build.

    validate_sagemaker.py DIR...              validate every *.json in each DIR
    validate_sagemaker.py --self-test DIR     break DIR's bodies on purpose: each must fail

Each file is named after its API call (`PutScalingPolicy-AllTraffic.json`).
botocore's ParamValidator checks required members, unknown members, types
and minimums; it does not check enums, patterns or maximums, which the
service enforces, so they are checked here too from the same shapes.
"""

import copy
import json
import pathlib
import re
import sys

import botocore.session
from botocore.validate import ParamValidator

SERVICES = {
    "CreateEndpointConfig": "sagemaker",
    "CreateEndpoint": "sagemaker",
    "CreateInferenceComponent": "sagemaker",
    "RegisterScalableTarget": "application-autoscaling",
    "PutScalingPolicy": "application-autoscaling",
    "PutScheduledAction": "application-autoscaling",
    "PutMetricAlarm": "cloudwatch",
}

SESSION = botocore.session.get_session()
MODELS = {}
UNCHECKED_PATTERNS = set()


def input_shape(operation):
    service = SERVICES[operation]
    if service not in MODELS:
        MODELS[service] = SESSION.get_service_model(service)
    return MODELS[service].operation_model(operation).input_shape


def operation_of(path):
    """`PutScalingPolicy-AllTraffic.json` -> `PutScalingPolicy`."""
    operation = path.stem.split("-", 1)[0]
    if operation not in SERVICES:
        raise SystemExit(f"{path}: no API call is named `{operation}` (expected one of {', '.join(SERVICES)})")
    return operation


def strict_errors(shape, value, where):
    """What the service checks and ParamValidator does not: enums, patterns, maximums."""
    errors = []
    meta = shape.metadata
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in value.items():
            if name in shape.members:
                errors += strict_errors(shape.members[name], member, f"{where}.{name}")
    elif shape.type_name == "list" and isinstance(value, list):
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"{where}: {len(value)} items, at most {meta['max']}")
        for i, item in enumerate(value):
            errors += strict_errors(shape.member, item, f"{where}[{i}]")
    elif shape.type_name == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            errors.append(f"{where}: {value!r} is not one of {shape.enum}")
        if "max" in meta and len(value) > meta["max"]:
            errors.append(f"{where}: {len(value)} characters, at most {meta['max']}")
        pattern = meta.get("pattern")
        if pattern:
            try:
                if not re.fullmatch(pattern, value):
                    errors.append(f"{where}: {value!r} does not match the pattern {pattern}")
            except re.error:
                UNCHECKED_PATTERNS.add(pattern)  # Java-only syntax such as \p{Print}
    elif shape.type_name in ("integer", "long", "double", "float") and isinstance(value, (int, float)):
        if "max" in meta and value > meta["max"]:
            errors.append(f"{where}: {value} is above the maximum {meta['max']}")
    return errors


def errors_of(operation, body):
    shape = input_shape(operation)
    report = ParamValidator().validate(body, shape)
    errors = [report.generate_report()] if report.has_errors() else []
    return errors + strict_errors(shape, body, operation)


def validate(folder):
    files = sorted(p for p in pathlib.Path(folder).glob("*.json") if p.name != "manifest.json")
    if not any(operation_of(p) == "CreateEndpointConfig" for p in files):
        return [f"{folder}: no CreateEndpointConfig*.json"]
    failures = []
    for path in files:
        errors = errors_of(operation_of(path), json.loads(path.read_text()))
        failures += [f"{path}: {e}" for e in errors]
        print(f"{'FAIL' if errors else 'ok  '} {path}")
    return failures


def set_at(body, keys, value):
    for k in keys[:-1]:
        body = body[k]
    if value is DELETE:
        del body[keys[-1]]
    else:
        body[keys[-1]] = value


DELETE = object()


def self_test(folder):
    """Every deliberate mistake must be caught, or the check could not fail."""
    folder = pathlib.Path(folder)
    config = json.loads(next(folder.glob("CreateEndpointConfig*.json")).read_text())
    policies = (json.loads(p.read_text()) for p in sorted(folder.glob("PutScalingPolicy-*.json")))
    policy = next(p for p in policies if "TargetTrackingScalingPolicyConfiguration" in p)
    variant = ["ProductionVariants", 0]
    tracking = ["TargetTrackingScalingPolicyConfiguration"]
    mistakes = [
        ("CreateEndpointConfig", config, variant + ["InstanceTyp"], "ml.g5.xlarge", "a misspelt member"),
        ("CreateEndpointConfig", config, variant + ["InitialInstanceCount"], "1", "a count as a string"),
        ("CreateEndpointConfig", config, variant + ["VariantName"], DELETE, "a required member missing"),
        ("CreateEndpointConfig", config, variant + ["InstanceType"], "g5.xlarge", "an instance type without ml."),
        ("CreateEndpointConfig", config, ["EndpointConfigName"], "has spaces", "a name off SageMaker's pattern"),
        ("PutScalingPolicy", policy, tracking + ["TargetValue"], "high", "a target as a string"),
        ("PutScalingPolicy", policy, tracking + ["ScaleInCooldown"], 1.5, "a fractional cooldown"),
        ("PutScalingPolicy", policy, ["PolicyType"], "TargetTracking", "a policy type not in the enum"),
    ]
    missed = []
    for operation, body, keys, value, what in mistakes:
        broken = copy.deepcopy(body)
        set_at(broken, keys, value)
        if errors_of(operation, broken):
            print(f"caught: {what}")
        else:
            missed.append(what)
    if errors_of("CreateEndpointConfig", config) or errors_of("PutScalingPolicy", policy):
        missed.append("the unbroken bodies fail")
    return [f"self-test: not caught: {m}" for m in missed]


def main(argv):
    if argv[:1] == ["--self-test"] and len(argv) == 2:
        failures = self_test(argv[1])
    elif argv and not argv[0].startswith("-"):
        failures = [f for folder in argv for f in validate(folder)]
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for pattern in sorted(UNCHECKED_PATTERNS):
        print(f"note: pattern {pattern} uses syntax Python's re lacks; not checked")
    for f in failures:
        print(f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
