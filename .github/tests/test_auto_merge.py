"""auto_merge.py against a local fake of the GitHub REST and GraphQL API."""

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fakegithub import FakeGitHub  # noqa: E402

sys.path.pop(0)

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "auto_merge.py"
PR = "https://github.com/example-org/task-platform/pull/42"


def run(api, *args, token="ghs_bot"):
    env = {"PATH": "/usr/bin:/bin", "GITHUB_API_URL": api.url, "GITHUB_GRAPHQL_URL": api.url + "/graphql"}
    if token:
        env["GH_TOKEN"] = token
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False, env=env)


def test_squash_auto_merge_is_enabled_on_the_pull_requests_node():
    with FakeGitHub() as api:
        api.route("GET", "/repos/example-org/task-platform/pulls/42", {"node_id": "PR_node42"})
        api.route("POST", "/graphql", {"data": {"enablePullRequestAutoMerge": {"pullRequest": {"number": 42}}}})
        result = run(api, PR)
        (mutation,) = api.sent("POST", "/graphql")
    assert result.returncode == 0, result.stderr
    assert mutation.headers["authorization"] == "Bearer ghs_bot"
    assert mutation.body["variables"] == {"id": "PR_node42"}
    query = " ".join(mutation.body["query"].split())
    assert "enablePullRequestAutoMerge(input: {pullRequestId: $id, mergeMethod: SQUASH})" in query


def test_graphql_errors_fail_the_step():
    with FakeGitHub() as api:
        api.route("GET", "/repos/example-org/task-platform/pulls/42", {"node_id": "PR_node42"})
        api.route("POST", "/graphql", {"errors": [{"message": "Auto merge is not allowed for this repository"}]})
        result = run(api, PR)
    assert result.returncode == 1 and "Auto merge is not allowed" in result.stderr


def test_an_unknown_pull_request_fails_the_step():
    with FakeGitHub() as api:
        result = run(api, PR)
    assert result.returncode == 1 and "404" in result.stderr


def test_usage_errors():
    with FakeGitHub() as api:
        assert run(api, "https://github.com/o/r/issues/1").returncode == 2
        assert run(api, PR, token="").returncode == 2
        assert api.requests == []
