"""Shared fixtures of the Flux tree checks: rendered environments (each rendered once per run)
and the readable per-environment diff printed at the end of the run."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import crd_schema  # noqa: E402
import fluxtree  # noqa: E402
import releases  # noqa: E402

@pytest.fixture(scope="session", autouse=True)
def _tools() -> None:
    missing = [tool for tool in ("kubectl", "helm", "yamllint", "git") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"tools missing from PATH: {missing} (run through .ci/test, which sources .ci/tools.sh)")


_RENDERED: dict[str, fluxtree.Rendered] = {}


@pytest.fixture(scope="session")
def rendered():
    """environment -> everything Flux applies there, with that cluster's cluster-vars."""

    def get(environment: str) -> fluxtree.Rendered:
        if environment not in _RENDERED:
            _RENDERED[environment] = fluxtree.render_environment(environment)
        return _RENDERED[environment]

    return get


_RELEASES: dict[str, dict[str, releases.ReleaseRender]] = {}


@pytest.fixture(scope="session")
def chart_renders(rendered):
    """environment -> {HelmRelease key: its render with the real chart} (once per run)."""

    def get(environment: str) -> dict[str, releases.ReleaseRender]:
        if environment not in _RELEASES:
            _RELEASES[environment] = releases.render_releases(rendered(environment))
        return _RELEASES[environment]

    return get


@pytest.fixture(scope="session")
def crd_registry(chart_renders):
    """environment -> the CRDs that environment installs (Flux's and every chart's)."""
    cache: dict[str, crd_schema.Registry] = {}

    def get(environment: str) -> crd_schema.Registry:
        if environment not in cache:
            crds = list(releases.flux_crds())
            for render in chart_renders(environment).values():
                crds += render.crds
            cache[environment] = crd_schema.Registry(crds)
        return cache[environment]

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
