#!/usr/bin/env python3
"""One chart version names one chart: a changed chart must raise its version.

Release publishes a chart only when its version is new (OCI chart tags are immutable in
ECR), so a changed chart with an unchanged version would never reach any environment, and the
same version would name different charts in different commits.

    chart_bump.py --base BASE_SHA --chart apps/base/task-api/chart [--history [--waivers FILE]]

"Changed" means what `helm package` would ship changed: the chart directory minus what
.helmignore excludes (tests/, ci/, …), Chart.yaml compared by its parsed fields without
`version`. Comments of Chart.yaml and files Helm leaves out need no bump.

Without --history: compares the working tree with the merge base of BASE_SHA and HEAD; the
version must go up if the packaged chart changed. With --history: also walks every commit on
HEAD's first-parent line that touched the chart, plus the working tree, and fails when one
version names two different packaged charts. Versions that did so before this rule existed are
listed in FILE (default .github/chart-history-waivers.yaml), each commit of theirs by hash and
older than the file's `before:` commit; no later commit can be waived.

Exit status: 0 fine, 1 a rule is broken, 2 usage or git error.
"""

from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import posixpath
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
VERSION_LINE = re.compile(r"""^version:\s*["']?([^"'\s#]+)["']?\s*(?:#.*)?$""", re.MULTILINE)
WAIVERS = Path(".github/chart-history-waivers.yaml")
WORKING_TREE = "working tree"
# Helm adds this rule to every .helmignore (pkg/ignore: hidden files under templates/).
HELM_DEFAULT_IGNORES = ["templates/.?*"]


class ChartBumpError(Exception):
    pass


def chart_version(chart_yaml: str, where: str) -> str:
    match = VERSION_LINE.search(chart_yaml)
    if not match:
        raise ChartBumpError(f"{where}: no top-level `version:`")
    version = match.group(1)
    if not SEMVER.match(version):
        raise ChartBumpError(f"{where}: version {version!r} is not semantic")
    return version


def precedence(version: str) -> tuple:
    """Semantic Versioning 2.0.0 §11 ordering as a sortable key."""
    major, minor, patch, pre = SEMVER.match(version).groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    ids = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, ids)


def git(*args: str, binary: bool = False):
    result = subprocess.run(["git", *args], capture_output=True, text=not binary, check=False)
    if result.returncode != 0:
        err = result.stderr.decode(errors="replace") if binary else result.stderr
        raise OSError(f"git {' '.join(args)}: {err.strip()}")
    return result.stdout


# --- what `helm package` ships -------------------------------------------------------------


@dataclass(frozen=True)
class _Rule:
    pattern: str
    must_dir: bool

    def matches(self, path: str, is_dir: bool) -> bool:
        if self.must_dir and not is_dir:
            return False
        pattern = self.pattern
        if pattern.startswith("/"):
            return fnmatch.fnmatchcase(path, pattern[1:])
        if "/" in pattern:
            return fnmatch.fnmatchcase(path, pattern)
        return fnmatch.fnmatchcase(posixpath.basename(path), pattern)


def helmignore_rules(text: str) -> list[_Rule]:
    rules = []
    for line in [*text.splitlines(), *HELM_DEFAULT_IGNORES]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            raise ChartBumpError(".helmignore negation (!) is not modelled here; extend chart_bump.py")
        if "**" in line:
            raise ChartBumpError(".helmignore does not support ** (Helm matches with filepath.Match)")
        rules.append(_Rule(line.rstrip("/"), line.endswith("/")))
    return rules


def packaged(paths: list[str], helmignore: str) -> list[str]:
    """The chart-relative paths Helm packages: a path is dropped when it, or a directory above
    it, matches a rule (Helm skips an ignored directory's whole subtree)."""
    rules = helmignore_rules(helmignore)
    kept = []
    for path in sorted(paths):
        parts = path.split("/")
        ancestors = ["/".join(parts[:i]) for i in range(1, len(parts))]
        if any(rule.matches(d, True) for d in ancestors for rule in rules):
            continue
        if any(rule.matches(path, False) for rule in rules):
            continue
        kept.append(path)
    return kept


def _blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _chart_metadata(text: str, where: str) -> str:
    try:
        import yaml
    except ImportError as err:  # pragma: no cover - the CI jobs install python3-yaml
        raise OSError("PyYAML is required to compare Chart.yaml") from err
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ChartBumpError(f"{where} is not a mapping")
    data.pop("version", None)
    return json.dumps(data, sort_keys=True, default=str)


@dataclass(frozen=True)
class ChartState:
    where: str  # a commit hash or WORKING_TREE
    version: str
    digest: str
    files: tuple[str, ...]


def _state(where: str, files: dict[str, str], read) -> ChartState:
    """files: chart-relative path -> blob id; read(path) -> text."""
    if "Chart.yaml" not in files:
        raise ChartBumpError(f"no Chart.yaml at {where}")
    chart_yaml = read("Chart.yaml")
    version = chart_version(chart_yaml, f"Chart.yaml at {where}")
    helmignore = read(".helmignore") if ".helmignore" in files else ""
    kept = packaged(list(files), helmignore)
    digest = hashlib.sha256()
    for path in kept:
        value = _chart_metadata(chart_yaml, f"Chart.yaml at {where}") if path == "Chart.yaml" else files[path]
        digest.update(f"{path}\0{value}\n".encode())
    return ChartState(where, version, digest.hexdigest(), tuple(kept))


def state_at(commit: str, chart: str) -> ChartState | None:
    listing = git("ls-tree", "-r", "--full-tree", commit, "--", f"{chart}/")
    files = {}
    for line in listing.splitlines():
        meta, path = line.split("\t", 1)
        files[path[len(chart) + 1:]] = meta.split()[2]
    if not files:
        return None
    return _state(commit, files, lambda p: git("show", f"{commit}:{chart}/{p}"))


def state_of_directory(directory: Path) -> ChartState:
    files = {p.relative_to(directory).as_posix(): _blob_id(p.read_bytes())
             for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    return _state(WORKING_TREE, files, lambda p: (directory / p).read_text(encoding="utf-8"))


# --- the rules -------------------------------------------------------------------------------


def check(base: str, chart: Path) -> str:
    merge_base = git("merge-base", base, "HEAD").strip()
    before = state_at(merge_base, chart.as_posix())
    if before is None:
        return f"{chart} is new"
    after = state_of_directory(chart)
    if after.digest == before.digest:
        return f"{chart}: the packaged chart is unchanged (version {after.version})"
    if precedence(after.version) <= precedence(before.version):
        raise ChartBumpError(
            f"{chart}: the packaged chart changed but its version went from {before.version} to {after.version}: "
            f"raise `version:` in {chart}/Chart.yaml"
        )
    return f"{chart} version {before.version} -> {after.version}"


def load_waivers(path: Path) -> tuple[str | None, dict[str, set[str]]]:
    if not path.exists():
        return None, {}
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    waived = {}
    for version, entry in (data.get("versions") or {}).items():
        if not entry.get("reason"):
            raise ChartBumpError(f"{path}: the waiver of {version} gives no reason")
        waived[str(version)] = {str(c) for c in entry.get("commits") or []}
    return data.get("before"), waived


def history(chart: Path, waivers_file: Path = WAIVERS, include_working_tree: bool = True) -> list[str]:
    """Walks the first-parent history; returns what it saw, raises on a version naming two charts."""
    if git("rev-parse", "--is-shallow-repository").strip() == "true":
        raise OSError("the clone is shallow: the chart history needs the full history (fetch-depth: 0)")
    before, waived = load_waivers(waivers_file)
    for version, commits in waived.items():
        for commit in commits:
            if not re.fullmatch(r"[0-9a-f]{40}", commit):
                raise ChartBumpError(f"{waivers_file}: waive commits by their full hash, not {commit!r}")
            if before is None or subprocess.run(["git", "merge-base", "--is-ancestor", commit, before],
                                                capture_output=True, check=False).returncode != 0:
                raise ChartBumpError(f"{waivers_file}: {commit[:12]} is not older than `before:`; raise the version instead")
    commits = git("rev-list", "--first-parent", "--reverse", "HEAD", "--", f"{chart.as_posix()}/").split()
    states = [s for s in (state_at(c, chart.as_posix()) for c in commits) if s is not None]
    if include_working_tree and chart.is_dir():
        states.append(state_of_directory(chart))
    current: dict[str, ChartState] = {}
    seen = []
    for state in states:
        known = current.get(state.version)
        if known is not None and known.digest != state.digest:
            if state.where not in waived.get(state.version, set()):
                where = "the working tree" if state.where == WORKING_TREE else f"commit {state.where[:12]}"
                raise ChartBumpError(
                    f"{chart}: version {state.version} already names the chart of commit {known.where[:12]}, "
                    f"and {where} changes what Helm packages without raising it: raise `version:` in {chart}/Chart.yaml"
                )
        current[state.version] = state
        seen.append(f"{state.where[:12]} {state.version} {state.digest[:12]}")
    return seen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", help="commit the pull request merges into")
    parser.add_argument("--chart", required=True, type=Path, help="chart directory, relative to the repository root")
    parser.add_argument("--history", action="store_true", help="also check every commit of the first-parent history")
    parser.add_argument("--waivers", type=Path, default=WAIVERS)
    args = parser.parse_args(argv)
    if not args.base and not args.history:
        parser.error("give --base, --history or both")
    try:
        if args.base:
            print(check(args.base, args.chart))
        if args.history:
            seen = history(args.chart, args.waivers)
            print(f"{args.chart}: {len(seen)} chart states, one chart per version")
    except ChartBumpError as err:
        print(f"::error file={args.chart}/Chart.yaml::{err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"chart_bump: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
