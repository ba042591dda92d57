#!/usr/bin/env python3
"""Turns on auto-merge (squash) for a pull request, so it merges once its required checks pass.

    GH_TOKEN=… auto_merge.py https://github.com/OWNER/REPO/pull/123

Uses only the standard library (the job container has no GitHub CLI).
"""

from __future__ import annotations

import json
import os
import re
import sys
import urllib.error
import urllib.request

PR_URL = re.compile(r"^https://[^/]+/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)/pull/(?P<number>\d+)$")
MUTATION = """
mutation($id: ID!) {
  enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: SQUASH}) {
    pullRequest { number autoMergeRequest { enabledAt } }
  }
}
"""


def call(url: str, token: str, payload: dict | None = None) -> dict:
    request = urllib.request.Request(
        url,
        data=None if payload is None else json.dumps(payload).encode(),
        headers={
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not (match := PR_URL.match(argv[0])):
        print("usage: auto_merge.py https://github.com/OWNER/REPO/pull/NUMBER", file=sys.stderr)
        return 2
    token = os.environ.get("GH_TOKEN", "")
    if not token:
        print("auto_merge: GH_TOKEN is not set", file=sys.stderr)
        return 2
    api = os.environ.get("GITHUB_API_URL") or "https://api.github.com"
    graphql = os.environ.get("GITHUB_GRAPHQL_URL") or f"{api}/graphql"
    try:
        pull = call(f"{api}/repos/{match['owner']}/{match['repo']}/pulls/{match['number']}", token)
        result = call(graphql, token, {"query": MUTATION, "variables": {"id": pull["node_id"]}})
    except urllib.error.HTTPError as err:
        print(f"auto_merge: GitHub answered {err.code}: {err.read().decode(errors='replace')}", file=sys.stderr)
        return 1
    if result.get("errors"):
        print(f"auto_merge: {result['errors']}", file=sys.stderr)
        return 1
    print(f"auto-merge enabled for {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
