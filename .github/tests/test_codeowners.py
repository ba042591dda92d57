"""CODEOWNERS as GitHub evaluates it (gitignore-style patterns, the last match wins, a pattern
without owners clears them), over every file in the repository: the release bot's dev
pull request needs no review, everything else keeps its owners."""

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CODEOWNERS = REPO / ".github" / "CODEOWNERS"
TEAM = re.compile(r"^@[\w.-]+/[\w.-]+$|^@[\w.-]+$|^[^@\s]+@[^@\s]+$")


def parse(text: str) -> list[tuple[re.Pattern, str, tuple[str, ...]]]:
    rules = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        pattern, *owners = line.split()
        assert not pattern.startswith("!") and "[" not in pattern, f"line {number}: GitHub ignores {pattern!r}"
        for owner in owners:
            assert TEAM.match(owner), f"line {number}: {owner!r} is not a user, team or e-mail"
        rules.append((compile_pattern(pattern), pattern, tuple(owners)))
    return rules


def compile_pattern(pattern: str) -> re.Pattern:
    directory_only = pattern.endswith("/")
    body = pattern.strip("/")
    anchored = pattern.startswith("/") or "/" in body
    regex = ""
    for token in re.split(r"(\*\*/|/\*\*|\*\*|\*|\?)", body):
        regex += {"**/": "(?:.*/)?", "/**": "/.*", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
    prefix = "^" if anchored else "^(?:.*/)?"
    suffix = "/.*$" if directory_only else "(?:/.*)?$"
    return re.compile(prefix + regex + suffix)


def owners(rules, path: str) -> tuple[str, ...] | None:
    found = None
    for regex, _, names in rules:
        if regex.match(path):
            found = names
    return found


RULES = parse(CODEOWNERS.read_text())


def tracked_files() -> list[str]:
    result = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False)
    if result.returncode != 0:  # not a git checkout: every file on disk
        return sorted(str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file() and ".git" not in p.parts)
    return result.stdout.split()


def test_the_matcher_follows_github_semantics():
    rules = parse("*  @o/all\n/apps/prod/  @o/rel\ndocs/*.md @o/docs\n/apps/dev/release.yaml\n")
    assert owners(rules, "README.md") == ("@o/all",)
    assert owners(rules, "apps/prod/release.yaml") == ("@o/rel",)
    assert owners(rules, "apps/production/x") == ("@o/all",)
    assert owners(rules, "docs/a.md") == ("@o/docs",) and owners(rules, "docs/sub/a.md") == ("@o/all",)
    assert owners(rules, "apps/dev/release.yaml") == ()
    assert owners(rules, "apps/dev/kustomization.yaml") == ("@o/all",)


def test_only_the_dev_release_file_merges_without_a_code_owner():
    unowned = [path for path in tracked_files() if not owners(RULES, path)]
    assert unowned == ["apps/dev/release.yaml"] or (
        unowned == [] and not (REPO / "apps/dev/release.yaml").exists()
    ), f"files without a code owner (they merge on checks alone): {unowned}"
    assert owners(RULES, "apps/dev/release.yaml") == (), "the dev release pull request would wait for a person"


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_promotions_need_a_release_approver(env):
    assert owners(RULES, f"apps/{env}/release.yaml") == ("@example-org/task-platform-release-approvers",)


@pytest.mark.parametrize("path", [
    ".github/CODEOWNERS", ".github/workflows/release.yaml", ".github/scripts/promote.py",
    "opentofu/stacks/global/ci_roles.tf", "clusters/prod/kustomization.yaml", "deny.toml",
])
def test_the_paths_that_grant_or_move_access_belong_to_infra(path):
    assert owners(RULES, path) == ("@example-org/task-platform-infra",)


def test_a_new_file_anywhere_gets_the_maintainers():
    assert owners(RULES, "some/new/file.rs") == ("@example-org/task-platform-maintainers",)
    assert owners(RULES, "apps/dev/new-patch.yaml") == ("@example-org/task-platform-maintainers",)
