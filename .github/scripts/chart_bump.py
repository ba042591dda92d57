#!/usr/bin/env python3
"""Refuses a pull request that changes the Helm chart without raising its version.

Release publishes a chart only when its version is new (OCI chart tags are immutable in
ECR), so a changed chart with an unchanged version would never reach any environment.

    chart_bump.py --base BASE_SHA --chart apps/base/task-api/chart

Compares the working tree with the merge base of BASE_SHA and HEAD. Exit status: 0 the chart
is unchanged or its version went up, 1 it changed without a higher version, 2 usage or git error.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
VERSION_LINE = re.compile(r"""^version:\s*["']?([^"'\s#]+)["']?\s*(?:#.*)?$""", re.MULTILINE)


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


def git(*args: str) -> str:
    result = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise OSError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def check(base: str, chart: Path) -> str:
    merge_base = git("merge-base", base, "HEAD").strip()
    changed = git("diff", "--name-only", merge_base, "--", str(chart)).split()
    if not changed:
        return f"{chart} unchanged"
    try:
        before_text = git("show", f"{merge_base}:{chart.as_posix()}/Chart.yaml")
    except OSError:
        return f"{chart} is new"
    before = chart_version(before_text, f"{chart}/Chart.yaml at {merge_base[:12]}")
    after = chart_version((chart / "Chart.yaml").read_text(encoding="utf-8"), f"{chart}/Chart.yaml")
    if precedence(after) <= precedence(before):
        raise ChartBumpError(
            f"{chart} changed ({len(changed)} files) but its version went from {before} to {after}: "
            f"raise `version:` in {chart}/Chart.yaml"
        )
    return f"{chart} version {before} -> {after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="commit the pull request merges into")
    parser.add_argument("--chart", required=True, type=Path, help="chart directory, relative to the repository root")
    args = parser.parse_args(argv)
    try:
        print(check(args.base, args.chart))
    except ChartBumpError as err:
        print(f"::error file={args.chart}/Chart.yaml::{err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"chart_bump: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
