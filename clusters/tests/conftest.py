"""Shared fixtures of the Flux tree checks: rendered environments (each rendered once per run)
and the readable per-environment diff printed at the end of the run."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fluxtree  # noqa: E402
import schema_check  # noqa: E402

@pytest.fixture(scope="session", autouse=True)
def _tools() -> None:
    missing = [tool for tool in ("kubectl", "helm", "node", "npm", "yamllint", "git") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"tools missing from PATH: {missing} (run through .ci/test, which sources .ci/tools.sh)")


@pytest.fixture(scope="session")
def crd_validator() -> Path:
    return schema_check.ensure_crd_validator()


_RENDERED: dict[str, fluxtree.Rendered] = {}


@pytest.fixture(scope="session")
def rendered():
    """environment -> everything Flux applies there, with that cluster's cluster-vars."""

    def get(environment: str) -> fluxtree.Rendered:
        if environment not in _RENDERED:
            _RENDERED[environment] = fluxtree.render_environment(environment)
        return _RENDERED[environment]

    return get


@pytest.fixture(scope="session")
def rendered_with_shared_vars() -> dict[str, fluxtree.Rendered]:
    """Every environment rendered with the same cluster-vars (dev's), so that a comparison shows
    only what the tree itself makes different: overlays and per-environment substitutions."""
    shared = fluxtree.cluster_vars("dev")
    return {env: fluxtree.render_environment(env, variables_override=shared) for env in fluxtree.ENVIRONMENTS}


def pytest_terminal_summary(terminalreporter) -> None:
    if fluxtree.ENV_DIFF_REPORT:
        terminalreporter.section("Flux tree: differences between environments")
        for line in fluxtree.ENV_DIFF_REPORT:
            terminalreporter.write_line(line)
