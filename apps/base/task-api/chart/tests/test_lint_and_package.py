"""The chart lints cleanly with every value set it is installed with, packages without its
tests, and refuses its bare defaults (there is no safe default image, issuer or database)."""

import re
import tarfile

import yaml

from chart_harness import CHART, run, tool


def test_helm_lint_strict(value_set):
    result = run([tool("helm"), "lint", "--strict", str(CHART), "-f", str(value_set.path)], check=False)
    assert result.returncode == 0, f"helm lint --strict failed for {value_set}:\n{result.stdout}\n{result.stderr}"


def test_bare_defaults_are_refused_with_the_missing_values_named():
    result = run([tool("helm"), "lint", "--strict", str(CHART)], check=False)
    assert result.returncode != 0, "the chart must not install without an image, an issuer and a database"
    output = result.stdout + result.stderr
    for key in ("image.tag", "image.repository", "config.oidcIssuerUrl", "config.oidcAudience",
                "database.existingSecret.name"):
        assert key in output, f"lint output does not name the missing {key}:\n{output}"


def test_chart_metadata_is_pinned():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "task-api"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"]), "chart version must be exact semver"
    assert re.fullmatch(r"\d+\.\d+\.\d+", str(chart["appVersion"])), "appVersion must be pinned"
    assert chart.get("kubeVersion"), "kubeVersion states the oldest supported cluster"


def test_package_leaves_tests_and_ci_values_out(tmp_path):
    run([tool("helm"), "package", str(CHART), "--destination", str(tmp_path)])
    (archive,) = tmp_path.glob("task-api-*.tgz")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "task-api/values.schema.json" in names
    assert "task-api/templates/NOTES.txt" in names
    leaked = [n for n in names if n.startswith(("task-api/tests/", "task-api/ci/")) or "__pycache__" in n]
    assert not leaked, f"packaged chart contains development files: {leaked}"
