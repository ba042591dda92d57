"""The promotion script edits exactly the chart version and image tag of a release file."""

import difflib
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / ".github" / "scripts" / "promote.py"

DEV_SHA = "0123456789abcdef0123456789abcdef01234567"
STAGING_SHA = "fedcba9876543210fedcba9876543210fedcba98"

RELEASE = """\
# Release of the Task API in {env}: the only file promotion edits.
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: task-api-chart
  namespace: task-api
spec:
  ref:
    tag: "{version}"        # chart version (semver, exact)
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: task-api
  namespace: task-api
spec:
  values:
    image:
      # full git SHA of the commit the image was built from
      tag: '{tag}'
"""


def release_text(env="dev", version="0.2.0", tag=DEV_SHA):
    return RELEASE.format(env=env, version=version, tag=tag)


def run(*args):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, check=False
    )


@pytest.fixture
def envs(tmp_path):
    dev = tmp_path / "dev.yaml"
    staging = tmp_path / "staging.yaml"
    dev.write_text(release_text("dev", "0.2.0", DEV_SHA))
    staging.write_text(release_text("staging", "0.1.0", STAGING_SHA))
    return dev, staging


def changed_lines(before: str, after: str):
    return [
        line for line in difflib.ndiff(before.splitlines(), after.splitlines()) if line[:2] in ("- ", "+ ")
    ]


def test_show_prints_github_output_lines(envs):
    dev, _ = envs
    result = run("show", dev)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["chart_version=0.2.0", f"image_tag={DEV_SHA}"]


def test_copy_changes_exactly_the_two_values_and_keeps_every_other_character(envs):
    dev, staging = envs
    before = staging.read_text()
    result = run("copy", dev, staging)
    assert result.returncode == 0, result.stderr
    after = staging.read_text()
    assert sorted(changed_lines(before, after)) == sorted([
        '-     tag: "0.1.0"        # chart version (semver, exact)',
        '+     tag: "0.2.0"        # chart version (semver, exact)',
        "-       tag: '" + STAGING_SHA + "'",
        '+       tag: "' + DEV_SHA + '"',
    ])
    # The staging file keeps its own header comment: only the two scalars moved.
    assert after.startswith("# Release of the Task API in staging")
    assert run("show", staging).stdout == run("show", dev).stdout
    assert dev.read_text() == release_text("dev", "0.2.0", DEV_SHA), "the source must not change"


def test_copy_is_idempotent(envs):
    dev, staging = envs
    assert run("copy", dev, staging).returncode == 0
    once = staging.read_text()
    result = run("copy", dev, staging)
    assert result.returncode == 0
    assert "already at" in result.stdout
    assert staging.read_text() == once


def test_set_writes_the_values_given(envs):
    dev, _ = envs
    new_sha = "a" * 40
    result = run("set", dev, "--image-tag", new_sha, "--chart-version", "1.4.0-rc.1+build.7")
    assert result.returncode == 0, result.stderr
    assert run("show", dev).stdout.splitlines() == ["chart_version=1.4.0-rc.1+build.7", f"image_tag={new_sha}"]


def test_plain_unquoted_strings_are_accepted_and_written_back_quoted(tmp_path):
    target = tmp_path / "release.yaml"
    target.write_text(release_text().replace('"0.2.0"', "0.2.0").replace(f"'{DEV_SHA}'", DEV_SHA))
    assert run("set", target, "--image-tag", "b" * 40, "--chart-version", "0.3.0").returncode == 0
    text = target.read_text()
    assert 'tag: "0.3.0"        # chart version' in text
    assert f'tag: "{"b" * 40}"' in text


@pytest.mark.parametrize(
    ("image_tag", "chart_version"),
    [
        ("0123456", "0.2.0"),  # short SHA
        (DEV_SHA.upper(), "0.2.0"),  # tags are lowercase hex
        ("latest", "0.2.0"),
        (DEV_SHA + "0", "0.2.0"),
        (DEV_SHA, "v0.2.0"),
        (DEV_SHA, "^0.2.0"),  # a range would let Flux pick a chart nobody promoted
        (DEV_SHA, "0.2"),
        (DEV_SHA, "0.2.0 "),
        (DEV_SHA, '0.2.0"\nfoo: "bar'),  # no way to inject YAML through a value
    ],
)
def test_set_refuses_malformed_values_and_leaves_the_file_alone(envs, image_tag, chart_version):
    dev, _ = envs
    before = dev.read_bytes()
    result = run("set", dev, "--image-tag", image_tag, "--chart-version", chart_version)
    assert result.returncode == 1
    assert "promote:" in result.stderr
    assert dev.read_bytes() == before


MALFORMED_SOURCES = {
    "not yaml": "spec: [unclosed\n",
    "empty": "",
    "four documents": release_text() + "---\n" + release_text(),
    "helm release only": release_text().split("---\n")[1],
    "chart source only": release_text().split("---\n")[0],
    "two chart sources": release_text().split("---\n")[0] + "---\n" + release_text().split("---\n")[0],
    "missing image tag": release_text().replace(f"      tag: '{DEV_SHA}'\n", ""),
    "missing chart version": release_text().replace('    tag: "0.2.0"        # chart version (semver, exact)\n', ""),
    # Flux prefers semver (and digest) over tag: the file would not name what runs.
    "semver beside the tag": release_text().replace('    tag: "0.2.0"', '    semver: ">=0.1.0"\n    tag: "0.2.0"'),
    "digest beside the tag": release_text().replace('    tag: "0.2.0"', '    digest: sha256:' + "0" * 64 + '\n    tag: "0.2.0"'),
    "duplicate tag": release_text() + f"      tag: '{STAGING_SHA}'\n",
    "wrong kind": release_text().replace("kind: HelmRelease", "kind: Kustomization"),
    "wrong source kind": release_text().replace("kind: OCIRepository", "kind: HelmRepository"),
    "wrong release": release_text().replace("name: task-api\n", "name: other\n"),
    "wrong chart source": release_text().replace("name: task-api-chart", "name: other"),
    "wrong namespace": release_text().replace("namespace: task-api", "namespace: default"),
    "wrong api": release_text().replace("helm.toolkit.fluxcd.io/v2", "helm.toolkit.fluxcd.io/v2beta1"),
    "wrong source api": release_text().replace("source.toolkit.fluxcd.io/v1", "source.toolkit.fluxcd.io/v1beta2"),
    "numeric tag": release_text(tag="1234567890123456789012345678901234567890").replace(
        "'1234567890123456789012345678901234567890'", "1234567890123456789012345678901234567890"
    ),
    "float version": release_text().replace('"0.2.0"', "1.0"),
    "block scalar tag": release_text().replace(f"tag: '{DEV_SHA}'", f"tag: |\n        {DEV_SHA}"),
    "mapping as tag": release_text().replace(f"tag: '{DEV_SHA}'", "tag: {sha: x}"),
    "short sha in file": release_text(tag="abc1234"),
    "range in file": release_text(version=">=0.1.0"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED_SOURCES))
def test_copy_refuses_a_malformed_source_and_leaves_the_target_alone(envs, case):
    dev, staging = envs
    dev.write_text(MALFORMED_SOURCES[case])
    before = staging.read_bytes()
    result = run("copy", dev, staging)
    assert result.returncode == 1, f"{case}: {result.stdout}"
    assert result.stderr.startswith("promote: "), result.stderr
    assert staging.read_bytes() == before


@pytest.mark.parametrize("case", sorted(set(MALFORMED_SOURCES) - {"short sha in file", "range in file"}))
def test_copy_refuses_a_malformed_target_and_leaves_it_alone(envs, case):
    dev, staging = envs
    staging.write_text(MALFORMED_SOURCES[case])
    before = staging.read_bytes()
    assert run("copy", dev, staging).returncode == 1
    assert staging.read_bytes() == before


def test_a_missing_file_is_an_error_not_a_traceback(tmp_path, envs):
    dev, _ = envs
    result = run("copy", dev, tmp_path / "absent.yaml")
    assert result.returncode == 1
    assert "cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_exit_2(envs):
    assert run("copy", envs[0]).returncode == 2
    assert run("promote-everything").returncode == 2


def committed_release_files():
    return sorted((REPO / "apps").glob("*/release.yaml"))


@pytest.mark.parametrize("path", committed_release_files(), ids=lambda p: p.parent.name)
def test_committed_release_files_are_what_the_workflows_can_edit(path, tmp_path):
    result = run("show", path)
    assert result.returncode == 0, result.stderr
    # A round trip through the same values changes nothing in the committed file.
    copy = tmp_path / "release.yaml"
    copy.write_bytes(path.read_bytes())
    values = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert run("set", copy, "--image-tag", values["image_tag"], "--chart-version", values["chart_version"]).returncode == 0
    assert run("show", copy).stdout == result.stdout
