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
