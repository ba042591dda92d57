"""Renovate keeps every pin of the Flux tree current: each chart version, OCIRepository tag and
image is seen by one of the managers configured in .github/renovate.json5 (their file
patterns and regexes applied here as Renovate applies them), and the runner image is proposed
as soon as it is released."""

from __future__ import annotations

import json
import re
import subprocess

import json5
import pytest
import yaml

from fluxtree import REPO, load_documents

CONFIG = REPO / ".github" / "renovate.json5"
TREE = [p for root in ("infrastructure", "clusters", "apps") for p in (REPO / root).rglob("*.yaml")
        if not {"tests", "chart"} & set(p.relative_to(REPO).parts)]
# Renovate reads every file of the repository that a manager's file patterns select.
TRACKED = [REPO / path for path in subprocess.run(
    ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split("\0") if path]
# Files whose `# renovate:` comments are pins for the custom managers (docs and tests only
# mention the syntax).
MARKED = [p for p in TRACKED if p.suffix in (".tf", ".yaml", ".yml") and p.is_file()
          and not {"tests", "docs", "chart"} & set(p.relative_to(REPO).parts)]


def _config() -> dict:
    return json5.loads(CONFIG.read_text())


def _file_regex(pattern: str) -> re.Pattern:
    assert pattern.startswith("/") and pattern.endswith("/"), f"managerFilePatterns entry {pattern} is not a regex"
    return re.compile(pattern[1:-1])


def _managed_files(patterns: list[str], files=None) -> set[str]:
    regexes = [_file_regex(p) for p in patterns]
    return {str(p.relative_to(REPO)) for p in (TREE if files is None else files)
            if any(r.search(str(p.relative_to(REPO))) for r in regexes)}


def _regex_extractions(config: dict) -> list[dict]:
    """What the custom regex managers extract from the repository, one dict per match: the
    named groups, the templates filled in, the file and the match's span."""
    found = []
    for manager in config.get("customManagers") or []:
        assert manager["customType"] == "regex"
        for path in sorted(_managed_files(manager["managerFilePatterns"], TRACKED)):
            text = (REPO / path).read_text()
            for pattern in manager["matchStrings"]:
                for match in re.finditer(pattern.replace("(?<", "(?P<"), text):
                    dep = {k: v for k, v in match.groupdict().items() if v is not None}
                    for field in ("datasource", "depName", "packageName", "versioning", "extractVersion"):
                        if f"{field}Template" in manager and field not in dep:
                            dep[field] = manager[f"{field}Template"]
                    found.append({**dep, "file": path, "span": match.span()})
    return found


def _regex_matches(config: dict) -> set[tuple[str, str]]:
    """(depName, currentValue) that the custom regex managers extract from the tree."""
    return {(dep["depName"], dep["currentValue"]) for dep in _regex_extractions(config)}


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
            # Renovate's flux manager skips an OCIRepository without spec.url (the kustomize
            # patches in apps/<env>/release.yaml, whose tag promotion sets).
            if (doc.get("kind") == "OCIRepository" and (doc["spec"].get("ref") or {}).get("tag")
                    and doc["spec"].get("url")):
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


def test_every_renovate_comment_is_read_by_a_regex_manager():
    """Each `# renovate:` pin (EKS add-ons and the Flux Operator chart in OpenTofu, the Flux
    release of each FluxInstance) is extracted with a datasource, a name and its current value."""
    config = _config()
    extractions = _regex_extractions(config)
    marked = []
    for path in MARKED:
        text = path.read_text(errors="replace")
        marked += [(str(path.relative_to(REPO)), m.start()) for m in re.finditer(r"#\s*renovate:", text)]
    assert len(marked) >= 9, marked  # 5 add-ons, the operator chart, 3 FluxInstances
    unread = [(f, at) for f, at in marked
              if not any(d["file"] == f and d["span"][0] <= at < d["span"][1] for d in extractions)]
    assert unread == [], f"renovate comments no manager reads: {unread}"
    for dep in extractions:
        assert dep.get("datasource") and dep.get("depName") and dep.get("currentValue"), dep


def test_the_opentofu_and_flux_pins_are_extracted_as_renovate_looks_them_up():
    extractions = [d for d in _regex_extractions(_config()) if d["file"].endswith((".tf", "flux-instance.yaml"))]
    addons = {d["depName"]: d for d in extractions if d["file"] == "opentofu/stacks/cluster/addons.tf"}
    assert set(addons) >= {"vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver"}
    for name, dep in addons.items():
        assert dep["datasource"] == "aws-eks-addon" and dep["currentValue"].startswith("v")
        # aws-eks-addon takes the filter as packageName: the add-on it names is the pin's key.
        assert json.loads(dep["packageName"])["addonName"] == name
        assert re.fullmatch(r"\d+\.\d+", json.loads(dep["packageName"])["kubernetesVersion"])
    (operator,) = [d for d in extractions if d["file"] == "opentofu/stacks/platform/flux.tf"]
    assert operator["datasource"] == "docker" and operator["depName"].endswith("/flux-operator")
    flux = [d for d in extractions if d["file"].endswith("flux-instance.yaml")]
    assert {d["file"].split("/")[1] for d in flux} >= {"dev", "staging", "prod"}
    for dep in flux:
        assert (dep["datasource"], dep["depName"]) == ("github-releases", "fluxcd/flux2")
        # The release tag is v<version>; extractVersion turns it into what the file holds.
        assert re.fullmatch(dep["extractVersion"].replace("(?<", "(?P<"), "v" + dep["currentValue"])
        text = (REPO / dep["file"]).read_text()
        assert f'version: "{dep["currentValue"]}"' in text[dep["span"][0]:dep["span"][1]]


def test_our_own_chart_is_left_to_promotion():
    """The flux manager extracts the base OCIRepository of our chart (a placeholder tag in a
    registry only the clusters reach); promotion owns that tag, so no update may be proposed."""
    config = _config()
    _, oci, _ = _pins()
    own = {url for url, _ in oci if url.endswith("/charts/task-api")}
    assert own, oci
    rules = [r for r in config["packageRules"] if r.get("enabled") is False and "docker" in (r.get("matchDatasources") or [])]
    patterns = [p for r in rules for p in r.get("matchPackageNames") or []]
    for url in own:
        assert any(p.startswith("/") and re.search(p[1:-1], url) for p in patterns), url
    third_party = {url for url, _ in oci} - own
    assert not any(re.search(p[1:-1], url) for p in patterns for url in third_party)
