"""Reads the OpenTofu code with python-hcl2 into plain Python values.

python-hcl2 keeps the quotes of string literals ('"foo"') and renders expressions as
'${...}'; `plain` strips the quotes so that literals compare as Python strings while
expressions stay recognisable by their '${' prefix.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

OPENTOFU = Path(__file__).resolve().parents[1]
STACKS = OPENTOFU / "stacks"
MODULES = OPENTOFU / "modules"
ENVIRONMENTS = OPENTOFU / "environments"
ENVS = ("dev", "staging", "prod")
ENV_STACKS = ("network", "cluster", "database", "platform")
ROOTS = ("global",) + ENV_STACKS

_META_KEYS = {"__is_block__", "__comments__", "__inline_comments__"}


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items() if k not in _META_KEYS}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str) and len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1].replace('\\"', '"')
    return value


def load_file(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return plain(hcl2.load(fh))


@dataclass
class Config:
    """Every top-level block of one directory of .tf files (one root or module)."""

    path: Path
    resources: dict[str, dict[str, dict]] = field(default_factory=dict)
    data: dict[str, dict[str, dict]] = field(default_factory=dict)
    ephemeral: dict[str, dict[str, dict]] = field(default_factory=dict)
    modules: dict[str, dict] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    outputs: dict[str, dict] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    providers: list[dict] = field(default_factory=list)
    terraform: list[dict] = field(default_factory=list)

    def resource(self, rtype: str, name: str) -> dict:
        assert name in self.resources.get(rtype, {}), f"{self.path.name}: no {rtype}.{name}"
        return self.resources[rtype][name]

    def module(self, name: str) -> dict:
        assert name in self.modules, f"{self.path.name}: no module {name}"
        return self.modules[name]


def load_config(directory: Path) -> Config:
    cfg = Config(path=directory)
    files = sorted(directory.glob("*.tf"))
    assert files, f"no .tf files in {directory}"
    for path in files:
        doc = load_file(path)
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                cfg.resources.setdefault(rtype, {}).update(named)
        for block in doc.get("data", []):
            for dtype, named in block.items():
                cfg.data.setdefault(dtype, {}).update(named)
        for block in doc.get("ephemeral", []):
            for etype, named in block.items():
                cfg.ephemeral.setdefault(etype, {}).update(named)
        for block in doc.get("module", []):
            cfg.modules.update(block)
        for block in doc.get("variable", []):
            cfg.variables.update(block)
        for block in doc.get("output", []):
            cfg.outputs.update(block)
        for block in doc.get("locals", []):
            cfg.locals.update(block)
        cfg.providers.extend(doc.get("provider", []))
        cfg.terraform.extend(doc.get("terraform", []))
    return cfg


@functools.lru_cache(maxsize=None)
def stack(name: str) -> Config:
    return load_config(STACKS / name)


def tfvars(env: str, stack_name: str) -> dict[str, Any]:
    return load_file(ENVIRONMENTS / env / f"{stack_name}.tfvars")


def tfbackend(env: str, stack_name: str) -> dict[str, Any]:
    return load_file(ENVIRONMENTS / env / f"{stack_name}.tfbackend")


_REF = re.compile(r"\$\{(local|var)\.([A-Za-z0-9_]+)\}")


def interpolate(text: str, cfg: Config, var_values: dict[str, Any] | None = None) -> str:
    """Substitutes ${local.x} and ${var.x} whose values are plain strings (recursively)."""
    var_values = var_values or {}

    def lookup(match: re.Match) -> str:
        kind, name = match.groups()
        if kind == "local":
            value = cfg.locals.get(name)
        else:
            value = var_values.get(name, cfg.variables.get(name, {}).get("default"))
        if not isinstance(value, str):
            return match.group(0)
        return value

    for _ in range(10):
        new = _REF.sub(lookup, text)
        if new == text:
            return new
        text = new
    raise AssertionError(f"interpolation does not settle: {text}")


def walk_strings(value: Any):
    """Every string anywhere inside a parsed value (keys included)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from walk_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk_strings(v)
    elif isinstance(value, str):
        yield value
