"""Validates custom resources against the openAPIV3Schema of their CRD, the way the API
server's structural-schema validation and pruning treat them.

- The CRD is the one the tree really installs: shipped by the chart of the release that
  installs it (rendered by releases.py) or, for Flux's kinds, the CRDs of the Flux release the
  bootstrap installs (../shared/crds/flux/<version>).
- apiVersion must be a served version of the CRD; an unknown group/kind is an error.
- type, required, enum, nullable, pattern, min/max (Length, Items, Properties, imum),
  int-or-string, items, properties, additionalProperties, allOf/anyOf/oneOf/not.
- Unknown fields are errors wherever the schema does not preserve them
  (x-kubernetes-preserve-unknown-fields, additionalProperties) — the API server would prune
  them silently, so a misspelt field would simply not take effect.
- metadata is checked for name (and namespace on namespaced kinds); x-kubernetes-validations
  (CEL rules) are not evaluated offline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


@dataclass(frozen=True)
class Definition:
    group: str
    kind: str
    scope: str
    versions: dict  # name -> schema (served versions only)


class Registry:
    """CRDs by (group, kind)."""

    def __init__(self, crds: list[dict]):
        self.definitions: dict[tuple[str, str], Definition] = {}
        for crd in crds:
            spec = crd["spec"]
            versions = {
                v["name"]: (v.get("schema") or {}).get("openAPIV3Schema") or spec.get("validation", {}).get("openAPIV3Schema") or {}
                for v in spec["versions"] if v.get("served", True)
            }
            self.definitions[(spec["group"], spec["names"]["kind"])] = Definition(
                spec["group"], spec["names"]["kind"], spec.get("scope", "Namespaced"), versions
            )

    def knows_group(self, group: str) -> bool:
        return any(g == group for g, _ in self.definitions)

    def validate(self, obj: dict) -> list[str]:
        group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
        definition = self.definitions.get((group, obj.get("kind")))
        if definition is None:
            return [f"no CRD installs {obj.get('apiVersion')} {obj.get('kind')}"]
        if version not in definition.versions:
            return [f"{obj.get('apiVersion')} is not a served version of {definition.kind} (served: {sorted(definition.versions)})"]
        problems = []
        meta = obj.get("metadata") or {}
        if not meta.get("name"):
            problems.append("/metadata/name: required")
        if definition.scope == "Namespaced" and not meta.get("namespace"):
            problems.append("/metadata/namespace: required for a namespaced kind")
        if definition.scope == "Cluster" and meta.get("namespace"):
            problems.append("/metadata/namespace: set on a cluster-scoped kind")
        schema = definition.versions[version]
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        root = {**schema, "properties": {k: v for k, v in (schema.get("properties") or {}).items()
                                         if k not in ("apiVersion", "kind", "metadata")}}
        problems += validate(body, root, "")
        return problems


def _preserves(schema: dict) -> bool:
    return bool(schema.get("x-kubernetes-preserve-unknown-fields"))


@lru_cache(maxsize=4096)
def _regex(pattern: str) -> re.Pattern:
    # ECMA-262 patterns as the CRDs write them; Python's re reads the ones in use.
    return re.compile(pattern)


def validate(value, schema: dict, path: str) -> list[str]:
    """Problems of value against a structural schema (JSON pointer paths)."""
    if not schema:
        return []
    where = path or "/"
    if value is None:
        return [] if schema.get("nullable") or not schema.get("type") else [f"{where}: null is not allowed"]
    problems: list[str] = []
    if schema.get("x-kubernetes-int-or-string"):
        if not (_TYPES["integer"](value) or isinstance(value, str)):
            return [f"{where}: must be an integer or a string, got {type(value).__name__}"]
    elif schema.get("type"):
        check = _TYPES.get(schema["type"])
        if check and not check(value):
            return [f"{where}: must be {schema['type']}, got {type(value).__name__} {value!r:.60}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and not _regex(schema["pattern"]).search(value):
            problems.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{where}: longer than {schema['maxLength']}")
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"{where}: shorter than {schema['minLength']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where}: below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where}: above {schema['maximum']}")
    for keyword in ("allOf",):
        for sub in schema.get(keyword) or []:
            problems += _validate_constraints(value, sub, path)
    if schema.get("anyOf") and not any(not _validate_constraints(value, s, path) for s in schema["anyOf"]):
        problems.append(f"{where}: matches none of anyOf")
    if schema.get("oneOf") and sum(1 for s in schema["oneOf"] if not _validate_constraints(value, s, path)) != 1:
        problems.append(f"{where}: must match exactly one of oneOf")
    if schema.get("not") and not _validate_constraints(value, schema["not"], path):
        problems.append(f"{where}: must not match the `not` schema")
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{where}: more than {schema['maxItems']} items")
        if "minItems" in schema and len(value) < schema["minItems"]:
            problems.append(f"{where}: fewer than {schema['minItems']} items")
        for index, item in enumerate(value):
            problems += validate(item, schema.get("items") or {}, f"{path}/{index}")
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                problems.append(f"{path}/{name}: required")
        if "maxProperties" in schema and len(value) > schema["maxProperties"]:
            problems.append(f"{where}: more than {schema['maxProperties']} properties")
        if "minProperties" in schema and len(value) < schema["minProperties"]:
            problems.append(f"{where}: fewer than {schema['minProperties']} properties")
        additional = schema.get("additionalProperties")
        embedded = schema.get("x-kubernetes-embedded-resource")
        for key, item in value.items():
            if key in properties:
                problems += validate(item, properties[key], f"{path}/{key}")
            elif isinstance(additional, dict):
                problems += validate(item, additional, f"{path}/{key}")
            elif additional is True or _preserves(schema):
                continue
            elif embedded and key in ("apiVersion", "kind", "metadata"):
                continue
            else:
                problems.append(f"{path}/{key}: field not in the CRD schema")
    return problems


def _validate_constraints(value, schema: dict, path: str) -> list[str]:
    """allOf/anyOf/oneOf/not branches in structural schemas carry value validations only
    (no types or properties of their own), so unknown fields are judged by the parent."""
    branch = {k: v for k, v in schema.items() if k not in ("additionalProperties",)}
    if isinstance(value, dict) and "properties" in branch and not _preserves(branch):
        branch = {**branch, "x-kubernetes-preserve-unknown-fields": True}
    if isinstance(value, dict) and "properties" not in branch:
        branch = {**branch, "x-kubernetes-preserve-unknown-fields": True}
    return validate(value, branch, path)
