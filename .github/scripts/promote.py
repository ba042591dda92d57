#!/usr/bin/env python3
"""Reads and edits the per-environment release file `apps/<env>/release.yaml`.

The file holds two kustomize patches: the OCIRepository `task-api-chart` (the verified chart
source, decision 0075), whose `spec.ref.tag` is the chart version, and the HelmRelease
`task-api`, whose `spec.values.image.tag` is the image. Promotion changes exactly those two
scalars and nothing else: the edit replaces their characters in place, so comments, key order,
quoting style elsewhere and every other line stay byte for byte as they were.

    promote.py show FILE                               prints chart_version=… and image_tag=…
    promote.py set FILE --image-tag SHA --chart-version VERSION
    promote.py copy SOURCE TARGET                      SOURCE's two values into TARGET

`show` prints `key=value` lines, ready to append to $GITHUB_OUTPUT. Exit status: 0 done (or
already up to date), 1 a file or value is malformed (nothing is written), 2 usage error.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

IMAGE_TAG = re.compile(r"^[0-9a-f]{40}$")
# Semantic Versioning 2.0.0, exact (no ranges, no leading "v"): Helm resolves this literally.
CHART_VERSION = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
CHART_VERSION_PATH = ("spec", "ref", "tag")
IMAGE_TAG_PATH = ("spec", "values", "image", "tag")
# The two documents of a release file, by what identifies them, and the scalar each carries.
CHART_SOURCE = {
    ("apiVersion",): "source.toolkit.fluxcd.io/v1",
    ("kind",): "OCIRepository",
    ("metadata", "name"): "task-api-chart",
    ("metadata", "namespace"): "task-api",
}
HELM_RELEASE = {
    ("apiVersion",): "helm.toolkit.fluxcd.io/v2",
    ("kind",): "HelmRelease",
    ("metadata", "name"): "task-api",
    ("metadata", "namespace"): "task-api",
}


class ReleaseFileError(Exception):
    """The release file, or a value meant for it, is not what promotion can safely edit."""


@dataclass(frozen=True)
class Release:
    chart_version: str
    image_tag: str


@dataclass(frozen=True)
class _Scalar:
    value: str
    start: int  # character offsets of the scalar, quotes included
    end: int


def validate_image_tag(tag: str) -> str:
    if not IMAGE_TAG.match(tag):
        raise ReleaseFileError(f"image tag {tag!r} is not a full 40-character lowercase git SHA")
    return tag


def validate_chart_version(version: str) -> str:
    if not CHART_VERSION.match(version):
        raise ReleaseFileError(f"chart version {version!r} is not an exact semantic version")
    return version


def _mapping_child(node: yaml.Node, key: str, where: str) -> yaml.Node:
    if not isinstance(node, yaml.MappingNode):
        raise ReleaseFileError(f"{where or 'the document'} is not a mapping")
    matches = [v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key]
    if not matches:
        raise ReleaseFileError(f"{where + '.' if where else ''}{key} is missing")
    if len(matches) > 1:
        raise ReleaseFileError(f"{where + '.' if where else ''}{key} appears more than once")
    return matches[0]


def _scalar_at(root: yaml.Node, path: tuple[str, ...]) -> _Scalar:
    node, where = root, ""
    for key in path:
        node = _mapping_child(node, key, where)
        where = f"{where}.{key}" if where else key
    if not isinstance(node, yaml.ScalarNode):
        raise ReleaseFileError(f"{where} must be a scalar")
    if node.tag != "tag:yaml.org,2002:str":
        # A plain 1.0 or an all-digit SHA would reach Helm as a number, not the string meant.
        raise ReleaseFileError(f"{where} must be a string (quote it)")
    if node.style not in (None, "'", '"'):
        raise ReleaseFileError(f"{where} must be a plain or quoted scalar, not a block scalar")
    if node.start_mark.line != node.end_mark.line:
        raise ReleaseFileError(f"{where} must be a single-line scalar")
    return _Scalar(node.value, node.start_mark.index, node.end_mark.index)


def _identity(root: yaml.Node, identity: dict[tuple[str, ...], str]) -> str | None:
    """None when `root` is the document `identity` describes, else why not."""
    for path, expected in identity.items():
        node, where = root, ""
        try:
            for key in path:
                node = _mapping_child(node, key, where)
                where = f"{where}.{key}" if where else key
        except ReleaseFileError as err:
            return str(err)
        if not isinstance(node, yaml.ScalarNode) or node.value != expected:
            return f"{where} must be {expected!r}"
    return None


def _compose(text: str, name: str) -> tuple[yaml.Node, yaml.Node]:
    """The release file's (OCIRepository, HelmRelease) documents, in whichever order."""
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as err:
        raise ReleaseFileError(f"{name} is not valid YAML: {err}") from err
    documents = [d for d in documents if d is not None]
    if len(documents) != 2:
        raise ReleaseFileError(
            f"{name} must hold exactly two YAML documents (OCIRepository task-api-chart, "
            f"HelmRelease task-api), found {len(documents)}"
        )
    found = []
    for label, identity in (("OCIRepository task-api/task-api-chart", CHART_SOURCE),
                            ("HelmRelease task-api/task-api", HELM_RELEASE)):
        matches = [d for d in documents if _identity(d, identity) is None]
        if len(matches) != 1:
            why = "; ".join(filter(None, (_identity(d, identity) for d in documents)))
            raise ReleaseFileError(f"{name}: needs exactly one {label}, found {len(matches)} ({why})")
        found.append(matches[0])
    return found[0], found[1]


def _locate(text: str, name: str) -> tuple[_Scalar, _Scalar]:
    source, release = _compose(text, name)
    try:
        ref = _mapping_child(_mapping_child(source, "spec", ""), "ref", "spec")
        keys = sorted(k.value for k, _ in ref.value) if isinstance(ref, yaml.MappingNode) else []
        if keys != ["tag"]:
            # semver or digest would take precedence over the tag: the version would not be the
            # one this file names.
            raise ReleaseFileError(f"OCIRepository spec.ref must hold the tag only, found {keys}")
        version = _scalar_at(source, CHART_VERSION_PATH)
        tag = _scalar_at(release, IMAGE_TAG_PATH)
    except ReleaseFileError as err:
        raise ReleaseFileError(f"{name}: {err}") from err
    return version, tag


def read_release(text: str, name: str = "release file") -> Release:
    version, tag = _locate(text, name)
    try:
        return Release(validate_chart_version(version.value), validate_image_tag(tag.value))
    except ReleaseFileError as err:
        raise ReleaseFileError(f"{name}: {err}") from err


def with_release(text: str, release: Release, name: str = "release file") -> str:
    """Returns `text` with its two release values replaced; every other character is kept."""
    validate_chart_version(release.chart_version)
    validate_image_tag(release.image_tag)
    version, tag = _locate(text, name)
    edits = sorted(
        [(version, f'"{release.chart_version}"'), (tag, f'"{release.image_tag}"')],
        key=lambda edit: edit[0].start,
        reverse=True,
    )
    for scalar, replacement in edits:
        text = text[: scalar.start] + replacement + text[scalar.end :]
    if read_release(text, name) != release:  # the edit must read back as exactly what was asked
        raise ReleaseFileError(f"{name}: the edited file does not read back as {release}")
    return text


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise ReleaseFileError(f"cannot read {path}: {err.strerror}") from err


def _write_release(path: Path, release: Release) -> bool:
    text = _read(path)
    updated = with_release(text, release, str(path))
    if updated == text:
        return False
    path.write_text(updated, encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", help="print the chart version and image tag of a release file")
    show.add_argument("file", type=Path)
    set_ = commands.add_parser("set", help="write a chart version and image tag into a release file")
    set_.add_argument("file", type=Path)
    set_.add_argument("--image-tag", required=True)
    set_.add_argument("--chart-version", required=True)
    copy = commands.add_parser("copy", help="copy the release of one environment into another")
    copy.add_argument("source", type=Path)
    copy.add_argument("target", type=Path)
    args = parser.parse_args(argv)

    try:
        if args.command == "show":
            release = read_release(_read(args.file), str(args.file))
            print(f"chart_version={release.chart_version}")
            print(f"image_tag={release.image_tag}")
            return 0
        if args.command == "set":
            release = Release(validate_chart_version(args.chart_version), validate_image_tag(args.image_tag))
            target = args.file
        else:
            release = read_release(_read(args.source), str(args.source))
            target = args.target
        changed = _write_release(target, release)
    except ReleaseFileError as err:
        print(f"promote: {err}", file=sys.stderr)
        return 1
    state = "updated" if changed else "already at"
    print(f"{target}: {state} chart {release.chart_version}, image {release.image_tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
