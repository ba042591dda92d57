#!/usr/bin/env python3
"""Reports jobs stuck in the queue on a self-hosted runner label: the sign that the ARC scale
set is down and `vars.RUNNER` should be deleted (fallback to GitHub-hosted runners).

    GH_TOKEN=… runner_health.py --repo OWNER/REPO --label arc-linux [--label arc-linux-docker]
                                [--max-wait-minutes 20] [--notify @org/team]

With --notify, the people to tell are told through one open issue labelled `runner-health`:
opened (mentioning them) when jobs get stuck, its body kept current while they stay stuck (no
new notification every run), commented on and closed once nothing waits any more. A failed
scheduled run alone would only e-mail whoever last edited the cron line.

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


def call(url: str, token: str, payload: dict | None = None, method: str | None = None) -> dict | list:
    request = urllib.request.Request(
        url,
        data=None if payload is None else json.dumps(payload).encode(),
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


get = call
PER_PAGE = 100


def _pages(url: str, token: str, key: str) -> list[dict]:
    items, page = [], 1
    while True:
        batch = get(f"{url}&per_page={PER_PAGE}&page={page}", token)[key]
        items += batch
        if len(batch) < PER_PAGE:
            return items
        page += 1


def queued_jobs(api: str, repo: str, token: str) -> list[dict]:
    """Every job of every run that may still wait for a runner. A run with one job running and
    another still waiting for a runner is "in_progress", so both run states are listed."""
    jobs, seen = [], set()
    for status in ("queued", "in_progress"):
        for run in _pages(f"{api}/repos/{repo}/actions/runs?status={status}", token, "workflow_runs"):
            if run["id"] in seen:
                continue
            seen.add(run["id"])
            jobs += _pages(f"{api}/repos/{repo}/actions/runs/{run['id']}/jobs?filter=latest", token, "jobs")
    return jobs


ISSUE_LABEL = "runner-health"
ISSUE_TITLE = "Self-hosted runners: jobs are waiting for a runner"


def report(stuck: list[StuckJob], labels: set[str], max_wait: int) -> str:
    lines = [f"{len(stuck)} job(s) waited over {max_wait} min for {', '.join(sorted(labels))}: the scale set looks down.",
             "", "Fall back to GitHub-hosted runners now (docs/runbooks/switch-runners.md):", "",
             "```sh", "gh variable delete RUNNER; gh variable delete RUNNER_DOCKER", "```", ""]
    lines += [f"- [{job.name}]({job.url}) ({', '.join(job.labels)}), waiting {int(job.waiting.total_seconds() // 60)} min"
              for job in stuck]
    return "\n".join(lines)


def notify(api: str, repo: str, token: str, mention: str, stuck: list[StuckJob], body: str) -> str:
    """Opens, updates or closes the one `runner-health` issue; returns what it did."""
    open_issues = [i for i in get(f"{api}/repos/{repo}/issues?state=open&labels={ISSUE_LABEL}&per_page=10", token)
                   if "pull_request" not in i]
    issue = open_issues[0] if open_issues else None
    if stuck and issue is None:
        created = call(f"{api}/repos/{repo}/issues", token,
                       {"title": ISSUE_TITLE, "body": f"{mention}\n\n{body}", "labels": [ISSUE_LABEL]})
        return f"opened issue #{created['number']} for {mention}"
    if stuck:
        call(f"{api}/repos/{repo}/issues/{issue['number']}", token, {"body": f"{mention}\n\n{body}"}, method="PATCH")
        return f"updated issue #{issue['number']}"
    if issue is not None:
        call(f"{api}/repos/{repo}/issues/{issue['number']}/comments", token,
             {"body": "No job waits for a self-hosted runner any more. Closing; set RUNNER/RUNNER_DOCKER again "
                      "when the scale set is back (docs/runbooks/switch-runners.md)."})
        call(f"{api}/repos/{repo}/issues/{issue['number']}", token, {"state": "closed", "state_reason": "completed"},
             method="PATCH")
        return f"closed issue #{issue['number']}"
    return "no issue to open or close"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--label", action="append", default=[], help="self-hosted label to watch (repeatable)")
    parser.add_argument("--max-wait-minutes", type=int, default=20)
    parser.add_argument("--notify", default="", help="who to tell through the runner-health issue (@org/team, @user)")
    args = parser.parse_args(argv)

    labels = {label for label in args.label if label and label != "ubuntu-latest" and not label.startswith("ubuntu-")}
    token = os.environ.get("GH_TOKEN", "")
    api = os.environ.get("GITHUB_API_URL") or "https://api.github.com"
    if not labels and not args.notify:
        print("runner-health: no self-hosted label in use; GitHub-hosted runners need no check")
        return 0
    if not token:
        print("runner-health: GH_TOKEN is not set", file=sys.stderr)
        return 2
    stuck: list[StuckJob] = []
    try:
        if labels:
            jobs = queued_jobs(api, args.repo, token)
            stuck = stuck_jobs(jobs, labels, datetime.now(timezone.utc), timedelta(minutes=args.max_wait_minutes))
        if args.notify:  # also when the labels were just deleted: close the issue
            print(f"runner-health: {notify(api, args.repo, token, args.notify, stuck, report(stuck, labels, args.max_wait_minutes))}")
    except (urllib.error.URLError, KeyError, TypeError, json.JSONDecodeError) as err:
        print(f"runner-health: GitHub API: {err}", file=sys.stderr)
        return 2

    if not stuck:
        print(f"runner-health: no job has waited over {args.max_wait_minutes} min for {sorted(labels) or 'any self-hosted label'}")
        return 0
    print(f"::error::{len(stuck)} job(s) waited over {args.max_wait_minutes} min for {sorted(labels)}: "
          "the scale set looks down. Fall back: gh variable delete RUNNER; gh variable delete RUNNER_DOCKER")
    for job in stuck:
        print(f"  {job.name} ({', '.join(job.labels)}) waiting {int(job.waiting.total_seconds() // 60)} min: {job.url}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
