"""Versions pinned everywhere; S3 state with locking, one key per environment and stage."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from opentofu_hcl import (  # noqa: E402
    ENV_STACKS,
    ENVIRONMENTS,
    ENVS,
    MODULES,
    ROOTS,
    STACKS,
    load_config,
    stack,
    tfbackend,
    tfvars,
)

EXACT = re.compile(r"^\d+\.\d+\.\d+$")
PATCH_PIN = re.compile(r"^(~> \d+\.\d+\.\d+|\d+\.\d+\.\d+)$")
ALL_CONFIGS = [STACKS / r for r in ROOTS] + [p for p in MODULES.iterdir() if p.is_dir()]


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: p.name)
def test_registry_modules_pinned_exactly(path):
    cfg = load_config(path)
    for name, call in cfg.modules.items():
        source = call["source"]
        if source.startswith("./") or source.startswith("../"):
            assert "version" not in call, f"{name}: local modules take no version"
            continue
        assert EXACT.match(call.get("version", "")), f"{path.name}/{name}: version {call.get('version')!r}"


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=lambda p: p.name)
def test_providers_and_opentofu_pinned(path):
    cfg = load_config(path)
    assert len(cfg.terraform) == 1, f"{path.name}: one terraform block"
    block = cfg.terraform[0]
    assert block["required_version"] == "~> 1.11"
    providers = block["required_providers"][0]
    assert providers, path.name
    for name, req in providers.items():
        assert PATCH_PIN.match(req["version"]), f"{path.name}: {name} {req['version']!r}"


def test_same_provider_build_in_every_root():
    seen: dict[str, set[str]] = {}
    for root in ROOTS:
        for name, req in stack(root).terraform[0]["required_providers"][0].items():
            seen.setdefault(f"{req['source']}", set()).add(req["version"])
    assert {k: v for k, v in seen.items() if len(v) > 1} == {}


def _backend_settings(root: str, env: str) -> dict:
    """What `tofu init -backend-config=<file>` ends up with: the block merged with the file."""
    block = dict(stack(root).terraform[0]["backend"][0]["s3"])
    block.update(tfbackend(env, root))
    return block


def _server_side_encryption(settings: dict) -> tuple[str | None, str | None]:
    """The SSE headers OpenTofu's S3 backend sends with each PutObject of the state
    (internal/backend/remote-state/s3/client.go, RemoteClient.Put): only with `encrypt`; then
    aws:kms with `kms_key_id` if set, else SSE-C with `sse_customer_key`, else AES256 (which
    overrides the bucket's KMS default). Without `encrypt`: no header, the bucket default."""
    if not settings.get("encrypt"):
        return None, None
    if settings.get("kms_key_id"):
        return "aws:kms", settings["kms_key_id"]
    if settings.get("sse_customer_key"):
        return "SSE-C", None
    return "AES256", None


BACKENDS = [("global", "global")] + [(st, env) for env in ENVS for st in ENV_STACKS]


@pytest.mark.parametrize(("root", "env"), BACKENDS, ids=lambda v: v)
def test_s3_backend_encrypts_with_the_state_key_and_locks_natively(root, env):
    backend = stack(root).terraform[0]["backend"][0]["s3"]
    assert backend["use_lockfile"] is True
    assert not {"bucket", "key"} & set(backend), "bucket/key come from the .tfbackend file"
    state_key = tfvars("global", "global")["state_kms_key_arn"]
    assert _server_side_encryption(_backend_settings(root, env)) == ("aws:kms", state_key)


def test_encryption_model_follows_the_backend():
    assert _server_side_encryption({"encrypt": True}) == ("AES256", None)
    assert _server_side_encryption({"kms_key_id": "k"}) == (None, None), "kms_key_id alone sends nothing"
    assert _server_side_encryption({"encrypt": True, "kms_key_id": "k"}) == ("aws:kms", "k")


def test_one_state_key_per_environment_and_stage():
    keys = {}
    assert tfbackend("global", "global")["key"] == "global/terraform.tfstate"
    buckets = {tfbackend("global", "global")["bucket"]}
    for env in ENVS:
        for st in ENV_STACKS:
            backend = tfbackend(env, st)
            assert backend["key"] == f"{env}/{st}/terraform.tfstate"
            keys[(env, st)] = backend["key"]
            buckets.add(backend["bucket"])
    assert len(set(keys.values())) == len(keys)
    assert len(buckets) == 1


@pytest.mark.parametrize("env", ENVS)
def test_every_stage_has_inputs_for_every_environment(env):
    for st in ENV_STACKS:
        values_file = ENVIRONMENTS / env / f"{st}.tfvars"
        assert values_file.is_file(), values_file
        cfg = stack(st)
        values = tfvars(env, st)
        assert values["environment"] == env
        unknown = set(values) - set(cfg.variables)
        assert not unknown, f"{env}/{st}.tfvars sets undeclared {sorted(unknown)}"
        required = {n for n, v in cfg.variables.items() if "default" not in v}
        missing = required - set(values)
        assert not missing, f"{env}/{st}.tfvars lacks {sorted(missing)}"


def test_remote_state_reads_point_at_earlier_stages_only():
    order = ["global", "network", "cluster", "database", "platform"]
    for position, root in enumerate(order):
        cfg = stack(root)
        for name, ds in cfg.data.get("terraform_remote_state", {}).items():
            assert name in order[:position], f"{root} reads {name}, which is not an earlier stage"
            key = ds["config"]["key"]
            expected = "global/terraform.tfstate" if name == "global" else f"${{var.environment}}/{name}/terraform.tfstate"
            assert key == expected, f"{root}: {key}"
