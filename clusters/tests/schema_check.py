"""Schema checks of rendered objects, offline.

- Kubernetes kinds: kubernetes-validate (the API's OpenAPI schemas), strict, so unknown fields
  fail.
- Custom resources (Flux, prometheus-operator, cert-manager, external-secrets): the validators
  compiled into the npm packages @kubernetes-models/* (types, enums, required fields), plus an
  unknown-field walk over the packages' type declarations (crd_fields.py).
- A kind that neither knows is an error, never a skip.

The npm packages are installed once per content of schema-validator/package*.json into the
user cache, with `npm ci` against the committed lock file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import kubernetes_validate

import crd_fields

VALIDATOR_SOURCE = Path(__file__).resolve().parent / "schema-validator"
KUBERNETES_SCHEMA_VERSION = "1.33"


def _cache_root() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "task-platform" / "clusters-tests"


def ensure_crd_validator() -> Path:
    """Installs the CRD schema packages (idempotent, cached); returns the install directory."""
    files = ("package.json", "package-lock.json", "validate.mjs")
    digest = hashlib.sha256(b"".join((VALIDATOR_SOURCE / f).read_bytes() for f in files)).hexdigest()[:16]
    target = _cache_root() / f"crd-validator-{digest}"
    if (target / ".installed").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".installed").exists():
            return target
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
        for name in files:
            shutil.copy2(VALIDATOR_SOURCE / name, staging / name)
        result = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=staging,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise RuntimeError(f"npm ci for the CRD schemas failed:\n{result.stderr}")
        (staging / ".installed").touch()
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return target


def _validate_custom(install_dir: Path, items: list[tuple[str, dict]]) -> dict[str, list[str]]:
    payload = json.dumps([{"id": key, "object": obj} for key, obj in items])
    result = subprocess.run(
        ["node", str(install_dir / "validate.mjs")],
        input=payload,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"CRD validator crashed:\n{result.stderr}")
    problems: dict[str, list[str]] = {}
    declarations = crd_fields.Declarations(install_dir / "node_modules")
    by_key = dict(items)
    for entry in json.loads(result.stdout):
        errors = list(entry["errors"])
        if entry["status"] == "ok":
            obj = by_key[entry["id"]]
            declaration = crd_fields.kind_declaration(install_dir / "node_modules", obj["apiVersion"], obj["kind"])
            if declaration is None:
                errors.append("no type declaration to check fields against")
            else:
                schema = declarations.interface(declaration)
                errors.extend(f"{path}: field not in the CRD" for path in crd_fields.unknown_fields(obj, schema))
        if errors:
            problems[entry["id"]] = [f"[{entry['status']}] {e}" for e in errors]
    return problems


def validate_objects(install_dir: Path, items: list[tuple[str, dict]]) -> dict[str, list[str]]:
    """Maps an item key to its schema problems; keys without problems are absent."""
    problems: dict[str, list[str]] = {}
    custom: list[tuple[str, dict]] = []
    for key, obj in items:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_SCHEMA_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            custom.append((key, obj))
        except kubernetes_validate.ValidationError as error:
            problems[key] = [str(error).splitlines()[0]]
        except kubernetes_validate.InvalidSchemaError as error:
            problems[key] = [f"invalid schema: {error}"]
    if custom:
        problems.update(_validate_custom(install_dir, custom))
    return problems
