#!/usr/bin/env python3
"""Reports jobs stuck in the queue on a self-hosted runner label: the sign that the ARC scale
set is down and `vars.RUNNER` should be deleted (fallback to GitHub-hosted runners).

    GH_TOKEN=… runner_health.py --repo OWNER/REPO --label arc-linux [--label arc-linux-docker]
                                [--max-wait-minutes 20]

Exit status: 0 healthy (or the labels are not in use), 1 stuck jobs found, 2 usage or API error.
Uses only the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone


@dataclass(frozen=True)
class StuckJob:
    name: str
    url: str
    labels: tuple[str, ...]
    waiting: timedelta


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def stuck_jobs(jobs: list[dict], labels: set[str], now: datetime, max_wait: timedelta) -> list[StuckJob]:
    """Queued jobs that asked for one of `labels` and have waited longer than `max_wait`."""
    stuck = []
    for job in jobs:
        if job.get("status") != "queued":
            continue
        wanted = set(job.get("labels") or [])
        if not wanted & labels:
            continue
        waiting = now - parse_time(job["created_at"])
        if waiting > max_wait:
            stuck.append(StuckJob(job.get("name", "?"), job.get("html_url", ""), tuple(sorted(wanted)), waiting))
    return stuck


def get(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    })
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def queued_jobs(api: str, repo: str, token: str) -> list[dict]:
    jobs = []
    # A run with one job running and another still waiting for a runner is "in_progress".
    runs = []
    for status in ("queued", "in_progress"):
        runs += get(f"{api}/repos/{repo}/actions/runs?status={status}&per_page=100", token)["workflow_runs"]
    for run in runs:
        jobs += get(f"{api}/repos/{repo}/actions/runs/{run['id']}/jobs?filter=latest&per_page=100", token)["jobs"]
    return jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--label", action="append", default=[], help="self-hosted label to watch (repeatable)")
    parser.add_argument("--max-wait-minutes", type=int, default=20)
    args = parser.parse_args(argv)

    labels = {label for label in args.label if label and label != "ubuntu-latest" and not label.startswith("ubuntu-")}
    if not labels:
        print("runner-health: no self-hosted label in use; GitHub-hosted runners need no check")
        return 0
    token = os.environ.get("GH_TOKEN", "")
    if not token:
        print("runner-health: GH_TOKEN is not set", file=sys.stderr)
        return 2
    api = os.environ.get("GITHUB_API_URL") or "https://api.github.com"
    try:
        jobs = queued_jobs(api, args.repo, token)
    except (urllib.error.URLError, KeyError, json.JSONDecodeError) as err:
        print(f"runner-health: cannot list queued jobs: {err}", file=sys.stderr)
        return 2

    stuck = stuck_jobs(jobs, labels, datetime.now(timezone.utc), timedelta(minutes=args.max_wait_minutes))
    if not stuck:
        print(f"runner-health: no job has waited over {args.max_wait_minutes} min for {sorted(labels)}")
        return 0
    print(f"::error::{len(stuck)} job(s) waited over {args.max_wait_minutes} min for {sorted(labels)}: "
          "the scale set looks down. Fall back: gh variable delete RUNNER; gh variable delete RUNNER_DOCKER")
    for job in stuck:
        print(f"  {job.name} ({', '.join(job.labels)}) waiting {int(job.waiting.total_seconds() // 60)} min: {job.url}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
