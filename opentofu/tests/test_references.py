"""A part of `tofu validate` that needs no provider: every name a root or module refers to is
declared exactly once (variables, locals, modules, resources, data sources, outputs)."""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from opentofu_hcl import MODULES, ROOTS, STACKS, load_config, load_file  # noqa: E402

CONFIGS = [STACKS / r for r in ROOTS] + [p for p in MODULES.iterdir() if p.is_dir()]
COMMENT = re.compile(r"(?m)^\s*#.*$|\s#[^\"\n]*$")
HEREDOC = re.compile(r"<<-?EOT.*?EOT", re.S)


def _code(directory: Path) -> str:
    text = "\n".join(p.read_text() for p in sorted(directory.glob("*.tf")))
    return COMMENT.sub("", HEREDOC.sub('""', text))


def _declared_counts(directory: Path) -> Counter:
    counts: Counter = Counter()
    for path in sorted(directory.glob("*.tf")):
        doc = load_file(path)
        for kind in ("variable", "output", "module"):
            for block in doc.get(kind, []):
                for name in block:
                    counts[(kind, name)] += 1
        for block in doc.get("locals", []):
            for name in block:
                counts[("local", name)] += 1
        for kind in ("resource", "data"):
            for block in doc.get(kind, []):
                for rtype, named in block.items():
                    for name in named:
                        counts[(kind, f"{rtype}.{name}")] += 1
    return counts


@pytest.mark.parametrize("directory", CONFIGS, ids=lambda p: p.name)
def test_names_declared_once(directory):
    duplicates = [k for k, n in _declared_counts(directory).items() if n > 1]
    assert duplicates == []


@pytest.mark.parametrize("directory", CONFIGS, ids=lambda p: p.name)
def test_references_resolve(directory):
    cfg = load_config(directory)
    code = _code(directory)
    missing = []
    for name in set(re.findall(r"\bvar\.([A-Za-z0-9_]+)", code)):
        if name not in cfg.variables:
            missing.append(f"var.{name}")
    for name in set(re.findall(r"\blocal\.([A-Za-z0-9_]+)", code)):
        if name not in cfg.locals:
            missing.append(f"local.{name}")
    for name in set(re.findall(r"\bmodule\.([A-Za-z0-9_]+)", code)):
        if name not in cfg.modules:
            missing.append(f"module.{name}")
    for rtype, name in set(re.findall(r"\bdata\.([a-z0-9_]+)\.([A-Za-z0-9_]+)", code)):
        if name not in cfg.data.get(rtype, {}):
            missing.append(f"data.{rtype}.{name}")
    for rtype, name in set(re.findall(r"\bephemeral\.([a-z0-9_]+)\.([A-Za-z0-9_]+)", code)):
        if name not in cfg.ephemeral.get(rtype, {}):
            missing.append(f"ephemeral.{rtype}.{name}")
    for rtype, name in set(re.findall(r"(?<![.\w])((?:aws|kubernetes|helm|flux)_[a-z0-9_]+)\.([A-Za-z0-9_]+)\b", code)):
        if name not in cfg.resources.get(rtype, {}):
            missing.append(f"{rtype}.{name}")
    assert sorted(missing) == []


@pytest.mark.parametrize("directory", CONFIGS, ids=lambda p: p.name)
def test_declared_variables_are_used(directory):
    cfg = load_config(directory)
    code = _code(directory)
    unused = [n for n in cfg.variables if not re.search(rf"\bvar\.{n}\b", code)]
    assert unused == []


def test_reference_check_catches_a_typo(tmp_path):
    (tmp_path / "main.tf").write_text(
        'variable "a" {\n  type = string\n}\n\nlocals {\n  b = var.a\n  c = var.typo\n}\n'
    )
    with pytest.raises(AssertionError):
        test_references_resolve(tmp_path)
