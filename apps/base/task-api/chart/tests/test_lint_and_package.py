"""The chart lints cleanly with every value set it is installed with, packages without its
tests, and refuses its bare defaults (there is no safe default image, issuer or database)."""

import re
import tarfile

import yaml

from chart_harness import CHART, run, schema_error_paths, tool


def test_helm_lint_strict(value_set):
    result = run([tool("helm"), "lint", "--strict", str(CHART), "-f", str(value_set.path)], check=False)
    assert result.returncode == 0, f"helm lint --strict failed for {value_set}:\n{result.stdout}\n{result.stderr}"


def test_bare_defaults_are_refused_with_the_missing_values_named():
    result = run([tool("helm"), "lint", "--strict", str(CHART)], check=False)
    assert result.returncode != 0, "the chart must not install without an image, an issuer and a database"
    output = schema_error_paths(result.stdout + result.stderr)
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


def test_notes_render_for_every_value_set(value_set, tmp_path):
    """NOTES.txt is only rendered by a real install (which needs a cluster); render a copy of
    it, wrapped into a YAML document, with helm template instead."""
    import shutil

    from chart_harness import NAMESPACE, RELEASE_NAME, values_of

    chart_copy = tmp_path / "task-api"
    shutil.copytree(CHART, chart_copy, ignore=shutil.ignore_patterns("tests", "ci"))
    notes_source = (CHART / "templates" / "NOTES.txt").read_text()
    (chart_copy / "templates" / "_notes_preview.tpl").write_text(
        '{{- define "notesPreview" -}}\n' + notes_source + "{{- end -}}\n"
    )
    (chart_copy / "templates" / "notes-preview.yaml").write_text(
        'notes: |-\n  {{- include "notesPreview" . | nindent 2 }}\n'
    )
    rendered = run([tool("helm"), "template", RELEASE_NAME, str(chart_copy), "--namespace", NAMESPACE,
                    "-f", str(value_set.path), "--show-only", "templates/notes-preview.yaml"]).stdout
    notes = yaml.safe_load(rendered)["notes"]
    values = values_of(value_set)
    assert f"rollout status deployment/{RELEASE_NAME}" in notes
    assert "Dev mode is off" in notes
    if values["ingress"]["enabled"]:
        assert f"https://{values['ingress']['host']}/openapi.json" in notes
    elif values["gateway"]["enabled"]:
        assert all(f"https://{h}/openapi.json" in notes for h in values["gateway"]["hostnames"])
    else:
        assert "port-forward service/" in notes
    assert "postgres://" not in notes
