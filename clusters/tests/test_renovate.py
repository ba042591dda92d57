"""Renovate keeps every pin of the Flux tree current: each chart version, OCIRepository tag and
image is seen by one of the managers configured in .github/renovate.json5 (their file
patterns and regexes applied here as Renovate applies them), and the runner image is proposed
as soon as it is released."""

from __future__ import annotations

import re

import json5
import pytest
import yaml

from fluxtree import REPO, load_documents

CONFIG = REPO / ".github" / "renovate.json5"
TREE = [p for root in ("infrastructure", "clusters", "apps") for p in (REPO / root).rglob("*.yaml")
        if not {"tests", "chart"} & set(p.relative_to(REPO).parts)]


def _config() -> dict:
    return json5.loads(CONFIG.read_text())


def _file_regex(pattern: str) -> re.Pattern:
    assert pattern.startswith("/") and pattern.endswith("/"), f"managerFilePatterns entry {pattern} is not a regex"
    return re.compile(pattern[1:-1])


def _managed_files(patterns: list[str]) -> set[str]:
    regexes = [_file_regex(p) for p in patterns]
    return {str(p.relative_to(REPO)) for p in TREE if any(r.search(str(p.relative_to(REPO))) for r in regexes)}


def _regex_matches(config: dict) -> set[tuple[str, str]]:
    """(depName, currentValue) that the custom regex managers extract from the tree."""
    found = set()
    for manager in config.get("customManagers") or []:
        assert manager["customType"] == "regex"
        for path in _managed_files(manager["managerFilePatterns"]):
            text = (REPO / path).read_text()
            for pattern in manager["matchStrings"]:
                for match in re.finditer(pattern.replace("(?<", "(?P<"), text):
                    found.add((match.group("depName"), match.group("currentValue")))
    return found


def _pins() -> tuple[dict[str, set[str]], set[tuple[str, str]], set[tuple[str, str]]]:
    """(files holding HelmReleases with chart.spec, OCIRepository url/tag pairs, string images)."""
    releases: dict[str, set[str]] = {}
    oci, images = set(), set()
    for path in TREE:
        text = path.read_text()
        try:
            docs = load_documents(text)
        except yaml.YAMLError:
            continue
        for doc in docs:
            if not isinstance(doc, dict):
                continue
            if doc.get("kind") == "HelmRelease" and "chart" in (doc.get("spec") or {}):
                releases.setdefault(str(path.relative_to(REPO)), set()).add(doc["metadata"]["name"])
            if doc.get("kind") == "OCIRepository" and (doc["spec"].get("ref") or {}).get("tag"):
                oci.add((doc["spec"]["url"].removeprefix("oci://"), doc["spec"]["ref"]["tag"]))
                releases.setdefault(str(path.relative_to(REPO)), set()).add("OCIRepository")
        for match in re.finditer(r"image: ([a-z0-9.\-/]+):([0-9][^\s\"']*)", text):
            images.add((match.group(1), match.group(2)))
    return releases, oci, images


def test_renovate_runs_the_managers_that_read_flux_manifests():
    config = _config()
    assert {"flux", "helm-values", "custom.regex"} <= set(config["enabledManagers"])
    # Dependabot keeps actions, base images and crates: Renovate must not propose them too.
    assert not {"github-actions", "dockerfile", "cargo"} & set(config["enabledManagers"])


def test_every_pin_of_the_tree_is_seen_by_a_manager():
    config = _config()
    releases, oci, images = _pins()
    flux_files = _managed_files(config["flux"]["managerFilePatterns"])
    assert set(releases) <= flux_files, f"HelmReleases the flux manager does not read: {set(releases) - flux_files}"
    oci_files = {f for f, kinds in releases.items() if "OCIRepository" in kinds}
    assert oci_files and oci_files <= flux_files, f"OCIRepositories the flux manager does not read: {oci_files - flux_files}"
    extracted = _regex_matches(config)
    assert images and images <= extracted, f"images no manager reads: {images - extracted}"


def test_the_runner_image_is_proposed_as_soon_as_it_is_released():
    config = _config()
    rules = [r for r in config["packageRules"] if "ghcr.io/actions/actions-runner" in (r.get("matchDepNames") or [])]
    assert len(rules) == 1
    rule = rules[0]
    assert rule.get("schedule") == ["at any time"]
    assert rule.get("minimumReleaseAge") in (None, "0 days")
    assert "minimumReleaseAge" in rule, "the global minimumReleaseAge must be overridden for the runner"
    assert ("ghcr.io/actions/actions-runner", "2.336.0") in _regex_matches(config) or any(
        dep == "ghcr.io/actions/actions-runner" for dep, _ in _regex_matches(config))


@pytest.mark.parametrize("dep", ["registry.k8s.io/autoscaling/cluster-autoscaler"])
def test_versions_coupled_to_the_cluster_minor_get_patches_only(dep):
    rules = [r for r in _config()["packageRules"] if dep in (r.get("matchDepNames") or [])]
    assert any(r.get("enabled") is False and set(r.get("matchUpdateTypes") or []) >= {"major", "minor"} for r in rules)
