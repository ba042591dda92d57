"""Loading helpers shared by the workflow tests (imported with a sys.path tweak)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = REPO / ".github" / "workflows"

# A step or job `uses:` of a remote action or reusable workflow, pinned: owner/repo[/path]@<40 hex> # vX.Y.Z
PINNED_USES = re.compile(r"^[\w.-]+/[\w.-]+(?:/[\w./-]+)?@[0-9a-f]{40}$")
LOCAL_USES = re.compile(r"^(?:\./|\$/)\.github/workflows/[\w.-]+\.ya?ml$")
VERSION_COMMENT = re.compile(r"uses:\s*(\S+)\s*#\s*(v\d+\.\d+\.\d+)\s*$")


@dataclass(frozen=True)
class Workflow:
    path: Path
    text: str
    data: dict

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def triggers(self) -> dict:
        # PyYAML reads the bare key `on` as the boolean True (YAML 1.1).
        on = self.data.get("on", self.data.get(True))
        if isinstance(on, str):
            return {on: None}
        if isinstance(on, list):
            return {t: None for t in on}
        return on or {}

    @property
    def jobs(self) -> dict[str, dict]:
        return self.data.get("jobs", {})


def load_workflows() -> list[Workflow]:
    workflows = []
    for path in sorted(WORKFLOWS_DIR.glob("*.y*ml")):
        text = path.read_text(encoding="utf-8")
        workflows.append(Workflow(path, text, yaml.safe_load(text)))
    return workflows


def steps(job: dict) -> list[dict]:
    return job.get("steps", []) or []


def called_workflow(job: dict) -> Workflow | None:
    uses = job.get("uses", "")
    if not LOCAL_USES.match(uses):
        return None
    path = REPO / uses[2:]
    text = path.read_text(encoding="utf-8")
    return Workflow(path, text, yaml.safe_load(text))


DOCS_CI_CD = REPO / "docs" / "ci-cd.md"
SECRET_SET = re.compile(r"gh secret set ([A-Z][A-Z0-9_]*)(?:\s+--env\s+(\S+))?")


def configured_secrets(doc: Path = DOCS_CI_CD) -> dict[str, set[str]]:
    """Secrets as docs/ci-cd.md tells an administrator to create them: environment (\"\" for the
    repository) -> names. A `for env in dev staging prod` loop expands `"$env…"`."""
    text = doc.read_text(encoding="utf-8")
    found: dict[str, set[str]] = {}
    for block in re.findall(r"```(?:sh|bash)?\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            for name, env in SECRET_SET.findall(line.split("#", 1)[0]):
                env = env.strip("\"'")
                targets = [env.replace("$env", e).replace("${env}", e) for e in ("dev", "staging", "prod")] if "$" in env else [env]
                for target in targets:
                    found.setdefault(target, set()).add(name)
    return found
