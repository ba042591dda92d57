"""Unknown-field check for custom resources, driven by the TypeScript declarations of the
@kubernetes-models packages. Used by the task-api chart's checks
(apps/base/task-api/chart/tests/chart_harness.py); the Flux tree's own checks validate custom
resources against the CRDs that install them instead (crd_schema.py).

The compiled validators in those packages check types, enums and required fields, but accept
any extra field, so a misspelt key (``remediateLastFailur``) would pass silently and be dropped
by the API server. The declarations list every field of every CRD version, so walking an
object against them finds fields that the CRD does not have.

Free-form parts of a CRD (Helm values, ``x-kubernetes-preserve-unknown-fields``) are declared
as empty interfaces or index signatures and are not checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_IMPORT = re.compile(r'import\s*\{\s*([A-Za-z0-9_]+)\s*\}\s*from\s*"([^"]+)"')
_INTERFACE = re.compile(r"export interface ([A-Za-z0-9_]+)[^{]*\{")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INDEX_SIGNATURE = re.compile(r"^\[\s*key\s*:\s*string\s*\]\s*:\s*(.*)$", re.S)


@dataclass(frozen=True)
class AnyType:
    """A part of the schema that accepts anything (primitives are type-checked elsewhere)."""


@dataclass(frozen=True)
class ArrayType:
    item: object


@dataclass(frozen=True)
class MapType:
    value: object


@dataclass
class StructType:
    fields: dict[str, object] = field(default_factory=dict)


ANY = AnyType()


def _matching_brace(text: str, open_index: int) -> int:
    depth = 0
    for index in range(open_index, len(text)):
        char = text[index]
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
    raise ValueError("unbalanced braces in declaration")


def _split_members(body: str) -> list[str]:
    members, depth, start = [], 0, 0
    for index, char in enumerate(body):
        if char in "{<(":
            depth += 1
        elif char in "}>)":
            depth -= 1
        elif char == ";" and depth == 0:
            members.append(body[start:index].strip())
            start = index + 1
    tail = body[start:].strip()
    if tail:
        members.append(tail)
    return [m for m in members if m]


class Declarations:
    """Resolves interface declarations inside one node_modules tree."""

    def __init__(self, node_modules: Path):
        self.node_modules = node_modules

    def module_file(self, specifier: str, importer: Path) -> Path | None:
        if specifier.startswith("."):
            candidate = (importer.parent / specifier).resolve()
        elif specifier.startswith("@"):
            candidate = self.node_modules / specifier
        else:
            candidate = self.node_modules / specifier
        text = str(candidate)
        if text.endswith(".js"):
            text = text[: -len(".js")]
        path = Path(text + ".d.ts")
        return path if path.is_file() else None

    @lru_cache(maxsize=None)
    def interface(self, path: Path) -> object:
        source = _COMMENT.sub("", path.read_text(encoding="utf-8"))
        imports = {name: spec for name, spec in _IMPORT.findall(source)}
        match = _INTERFACE.search(source)
        if not match:
            return ANY
        end = _matching_brace(source, match.end() - 1)
        body = source[match.end() : end]
        struct = self._struct(body, imports, path)
        # An interface without members (apiextensions JSON, IntOrString...) is free-form.
        return struct if struct.fields else ANY

    def _struct(self, body: str, imports: dict[str, str], path: Path) -> StructType:
        struct = StructType()
        for member in _split_members(body):
            if member.startswith("["):
                continue
            name_match = re.match(r'^"([^"]+)"\??\s*:\s*(.*)$', member, re.S)
            if not name_match:
                continue
            struct.fields[name_match.group(1)] = self._type(name_match.group(2).strip(), imports, path)
        return struct

    def _type(self, text: str, imports: dict[str, str], path: Path) -> object:
        if text.startswith("Array<") and text.endswith(">"):
            return ArrayType(self._type(text[len("Array<") : -1].strip(), imports, path))
        if text.startswith("{") and text.endswith("}"):
            inner = text[1:-1].strip()
            members = _split_members(inner)
            if len(members) == 1:
                index = _INDEX_SIGNATURE.match(members[0])
                if index:
                    return MapType(self._type(index.group(1).strip(), imports, path))
            struct = self._struct(inner, imports, path)
            return struct if struct.fields else ANY
        if _IDENTIFIER.match(text) and text in imports:
            target = self.module_file(imports[text], path)
            return self.interface(target) if target else ANY
        return ANY


def unknown_fields(value: object, schema: object, where: str = "") -> list[str]:
    """Paths (JSON pointer style) of fields in value that schema does not declare."""
    if isinstance(schema, StructType) and isinstance(value, dict):
        problems = []
        for key, item in value.items():
            if key not in schema.fields:
                problems.append(f"{where}/{key}")
            else:
                problems.extend(unknown_fields(item, schema.fields[key], f"{where}/{key}"))
        return problems
    if isinstance(schema, ArrayType) and isinstance(value, list):
        return [p for i, item in enumerate(value) for p in unknown_fields(item, schema.item, f"{where}/{i}")]
    if isinstance(schema, MapType) and isinstance(value, dict):
        return [p for k, item in value.items() for p in unknown_fields(item, schema.value, f"{where}/{k}")]
    return []


PACKAGES = (
    (re.compile(r"\.toolkit\.fluxcd\.io$"), "@kubernetes-models/flux-cd"),
    (re.compile(r"^monitoring\.coreos\.com$"), "@kubernetes-models/prometheus-operator"),
    (re.compile(r"(^|\.)cert-manager\.io$"), "@kubernetes-models/cert-manager"),
    (re.compile(r"(^|\.)external-secrets\.io$"), "@kubernetes-models/external-secrets"),
)


def kind_declaration(node_modules: Path, api_version: str, kind: str) -> Path | None:
    group, _, version = api_version.rpartition("/")
    for pattern, package in PACKAGES:
        if pattern.search(group):
            path = node_modules / package / group / version / f"{kind}.d.ts"
            return path if path.is_file() else None
    return None
