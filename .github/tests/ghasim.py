"""Runs a workflow job the way a GitHub runner does, close enough to test what the job does:
`${{ }}` expressions with GitHub's operators and truthiness, each step's `if:` (default
`success()`), `env:` merged workflow → job → step, `run:` scripts in
`bash --noprofile --norc -eo pipefail`, and $GITHUB_OUTPUT / $GITHUB_ENV / $GITHUB_PATH /
$GITHUB_STEP_SUMMARY, `steps.<id>.outputs|outcome`, job `outputs:`.

Actions (`uses:`) are replaced by Python fakes the test supplies; commands a script calls
(`docker`, `cosign`, `helm`, …) by fake executables (see FakeCommands) that record their argv
and answer by rule. The secrets a job sees are those configured for its `environment:` (and the
repository), as GitHub hands them out; anything else reads as an empty string.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

# --------------------------------------------------------------------------------------------
# Expressions (docs.github.com/actions/learn-github-actions/expressions)

TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|(?P<str>'(?:[^']|'')*')|(?P<op>==|!=|<=|>=|&&|\|\||[<>!()\[\],.*])"
    r"|(?P<ident>[A-Za-z_][\w-]*))"
)


class ExpressionError(Exception):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"cannot read {text[pos:]!r}")
        kind = match.lastgroup
        out.append((kind, match.group(kind)))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def truthy(value: Any) -> bool:
    return value not in (None, False, 0, "", 0.0)


def to_str(value: Any) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _coerce_number(value: Any) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip()) if value.strip() else 0.0
        except ValueError:
            return float("nan")
    return float("nan")


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return left.lower() == right.lower()  # GitHub compares strings case-insensitively
    if type(left) is type(right):
        return left == right
    return _coerce_number(left) == _coerce_number(right)  # null, '' and false all read as 0


class _Parser:
    def __init__(self, text: str, context: dict, functions: dict):
        self.tokens = _tokens(text)
        self.pos = 0
        self.context = context
        self.functions = functions

    def peek(self, value: str | None = None) -> bool:
        if self.pos >= len(self.tokens):
            return False
        return value is None or self.tokens[self.pos][1] == value

    def take(self, value: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens) or (value is not None and self.tokens[self.pos][1] != value):
            raise ExpressionError(f"expected {value!r} at token {self.pos}")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Any:
        value = self.or_()
        if self.pos != len(self.tokens):
            raise ExpressionError(f"trailing tokens {self.tokens[self.pos:]}")
        return value

    def or_(self) -> Any:
        value = self.and_()
        while self.peek("||"):
            self.take()
            right = self.and_()
            value = value if truthy(value) else right
        return value

    def and_(self) -> Any:
        value = self.compare()
        while self.peek("&&"):
            self.take()
            right = self.compare()
            value = right if truthy(value) else value
        return value

    def compare(self) -> Any:
        value = self.unary()
        while self.peek() and self.tokens[self.pos][1] in ("==", "!=", "<", ">", "<=", ">="):
            op = self.take()[1]
            right = self.unary()
            if op == "==":
                value = _equal(value, right)
            elif op == "!=":
                value = not _equal(value, right)
            else:
                a, b = _coerce_number(value), _coerce_number(right)
                value = {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
        return value

    def unary(self) -> Any:
        if self.peek("!"):
            self.take()
            return not truthy(self.unary())
        return self.primary()

    def primary(self) -> Any:
        kind, text = self.take()
        if text == "(":
            value = self.or_()
            self.take(")")
            return value
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "str":
            return text[1:-1].replace("''", "'")
        if kind != "ident":
            raise ExpressionError(f"unexpected {text!r}")
        if text in ("true", "false"):
            return text == "true"
        if text == "null":
            return None
        if self.peek("("):
            self.take()
            args = []
            while not self.peek(")"):
                args.append(self.or_())
                if self.peek(","):
                    self.take()
            self.take(")")
            if text.lower() not in self.functions:
                raise ExpressionError(f"function {text}() is not modelled")
            return self.functions[text.lower()](*args)
        if text not in self.context:
            raise ExpressionError(f"unknown context {text!r}")
        value = self.context[text]
        while self.peek(".") or self.peek("["):
            if self.take()[1] == ".":
                _, key = self.take()
                value = value.get(key) if isinstance(value, dict) else None
            else:
                key = self.or_()
                self.take("]")
                value = value.get(key) if isinstance(value, dict) else None
        return value


def _format(template: str, *args: Any) -> str:
    return re.sub(r"\{(\d+)\}", lambda m: to_str(args[int(m.group(1))]), template)


def evaluate(expression: str, context: dict, status: dict | None = None) -> Any:
    status = status or {"failed": False}
    functions: dict[str, Callable] = {
        "success": lambda: not status["failed"],
        "failure": lambda: status["failed"],
        "always": lambda: True,
        "cancelled": lambda: False,
        "format": _format,
        "contains": lambda a, b: (to_str(b).lower() in to_str(a).lower()) if not isinstance(a, list) else any(_equal(x, b) for x in a),
        "startswith": lambda a, b: to_str(a).lower().startswith(to_str(b).lower()),
        "endswith": lambda a, b: to_str(a).lower().endswith(to_str(b).lower()),
        "tojson": lambda a: json.dumps(a, indent=2),
        "fromjson": json.loads,
        "hashfiles": lambda *a: "0" * 64,
        "join": lambda a, sep=",": sep.join(to_str(x) for x in a) if isinstance(a, list) else to_str(a),
    }
    return _Parser(expression, context, functions).parse()


TEMPLATE = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)


def substitute(value: Any, context: dict, status: dict | None = None) -> Any:
    """`${{ }}` inside a YAML value: a lone expression keeps its type, mixed text becomes a string."""
    if isinstance(value, dict):
        return {k: substitute(v, context, status) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, context, status) for v in value]
    if not isinstance(value, str):
        return value
    whole = TEMPLATE.fullmatch(value)
    if whole and value.count("${{") == 1:
        return evaluate(whole.group(1), context, status)
    return TEMPLATE.sub(lambda m: to_str(evaluate(m.group(1), context, status)), value)


def condition(expression: Any, context: dict, status: dict) -> bool:
    if expression is None:
        return not status["failed"]
    if isinstance(expression, bool):
        return expression
    text = str(expression).strip()
    whole = TEMPLATE.fullmatch(text)
    if whole and text.count("${{") == 1:
        text = whole.group(1)
    elif "${{" in text:
        return truthy(substitute(text, context, status))
    uses_status = re.search(r"\b(success|failure|always|cancelled)\s*\(", text)
    if not uses_status:  # GitHub adds an implicit success() && … to every condition
        return not status["failed"] and truthy(evaluate(text, context, status))
    return truthy(evaluate(text, context, status))


# --------------------------------------------------------------------------------------------
# Fake commands

FAKE = """#!{python}
import json, os, re, sys
name = os.path.basename(sys.argv[0])
here = os.path.dirname(os.path.abspath(sys.argv[0]))
argv = sys.argv[1:]
with open(os.path.join(here, name + ".calls"), "a") as log:
    log.write(json.dumps(argv) + "\\n")
with open(os.path.join(here, name + ".rules")) as f:
    rules = json.load(f)
line = " ".join(argv)
for rule in rules:
    if re.search(rule["match"], line):
        for path, text in rule.get("files", {{}}).items():
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            with open(path, "w") as out:
                out.write(text)
        sys.stdout.write(rule.get("stdout", ""))
        sys.stderr.write(rule.get("stderr", ""))
        sys.exit(rule.get("exit", 0))
sys.stderr.write(name + ": no rule for " + line + "\\n")
sys.exit(97)
"""


class FakeCommands:
    """Executables in one directory that log their argv and answer by the first matching rule
    (a regex over the joined argv): {"match": ..., "stdout": ..., "exit": ..., "files": {...}}."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)

    def add(self, name: str, rules: list[dict]) -> None:
        script = self.dir / name
        script.write_text(FAKE.format(python=sys.executable))
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        (self.dir / f"{name}.rules").write_text(json.dumps(rules))
        (self.dir / f"{name}.calls").write_text("")

    def calls(self, name: str) -> list[list[str]]:
        path = self.dir / f"{name}.calls"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# --------------------------------------------------------------------------------------------
# Jobs


class StepFailed(Exception):
    pass


@dataclass
class JobRun:
    executed: list[str] = field(default_factory=list)  # names (or ids/uses) of the steps that ran
    steps: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    failed: bool = False
    log: list[str] = field(default_factory=list)
    summary: str = ""
    action_calls: list[tuple[str, dict]] = field(default_factory=list)


def step_label(step: dict) -> str:
    return step.get("name") or step.get("id") or step.get("uses") or step.get("run", "")[:40]


def _read_kv_file(path: Path) -> dict:
    out, lines, i = {}, path.read_text().splitlines() if path.exists() else [], 0
    while i < len(lines):
        line = lines[i]
        heredoc = re.match(r"^([\w-]+)<<(\S+)$", line)
        if heredoc:
            key, marker, i, buf = heredoc.group(1), heredoc.group(2), i + 1, []
            while i < len(lines) and lines[i] != marker:
                buf.append(lines[i])
                i += 1
            out[key] = "\n".join(buf)
        elif "=" in line:
            key, value = line.split("=", 1)
            out[key] = value
        i += 1
    return out


def run_job(
    workflow: dict,
    job_id: str,
    *,
    workdir: Path,
    fakes: FakeCommands,
    actions: dict[str, Callable[[dict, dict], dict | None]],
    github: dict,
    vars: dict | None = None,
    inputs: dict | None = None,
    needs: dict | None = None,
    secrets_by_environment: dict[str, dict] | None = None,
    skip_steps: dict[str, str] | None = None,
) -> JobRun:
    """Runs one job. `actions` maps an action (`owner/repo`, no ref) to fake(with, env) → outputs
    (raise StepFailed to fail the step). `skip_steps` maps a step name to the reason it is not run
    here (it downloads from the network, say); every other step runs."""
    job = workflow["jobs"][job_id]
    temp = workdir.parent / f"runner-temp-{job_id}"
    temp.mkdir(parents=True, exist_ok=True)
    files = {name: temp / name for name in ("output", "env", "path", "summary")}
    environment = job.get("environment")
    secrets_by_environment = secrets_by_environment or {}
    context: dict[str, Any] = {
        "github": {"server_url": "https://github.com", "api_url": "https://api.github.com", **github},
        "vars": vars or {},
        "inputs": inputs or {},
        "needs": needs or {},
        "matrix": {},
        "runner": {"temp": str(temp), "os": "Linux"},
        "steps": {},
        "env": {},
        "secrets": {},
    }
    if isinstance(environment, dict):
        environment = environment.get("name")
    if environment is not None:
        environment = to_str(substitute(environment, context))
    context["secrets"] = {**secrets_by_environment.get("", {}), **secrets_by_environment.get(environment or "", {})}
    status = {"failed": False}
    result = JobRun()

    env: dict[str, str] = {}
    for scope in (workflow.get("env") or {}, job.get("env") or {}):
        for key, value in scope.items():
            context["env"] = dict(env)
            env[key] = to_str(substitute(value, context, status))
    extra_path: list[str] = []
    for index, step in enumerate(job.get("steps") or []):
        label = step_label(step)
        step_id = step.get("id", f"__step{index}")
        context["env"] = dict(env)
        if not condition(step.get("if"), context, status):
            context["steps"][step_id] = {"outputs": {}, "outcome": "skipped", "conclusion": "skipped"}
            continue
        if skip_steps and label in skip_steps:
            context["steps"][step_id] = {"outputs": {}, "outcome": "success", "conclusion": "success"}
            continue
        step_env = dict(env)
        for key, value in (step.get("env") or {}).items():
            step_env[key] = to_str(substitute(value, {**context, "env": step_env}, status))
        outputs: dict = {}
        outcome = "success"
        result.executed.append(label)
        try:
            if "uses" in step:
                action = step["uses"].split("@", 1)[0]
                with_ = {k: to_str(v) for k, v in substitute(step.get("with") or {}, {**context, "env": step_env}, status).items()}
                result.action_calls.append((action, with_))
                if action not in actions:
                    raise StepFailed(f"action {action} is not modelled in this test")
                outputs = actions[action](with_, step_env) or {}
            else:
                for path in files.values():
                    path.write_text("")
                script = temp / f"step{index}.sh"
                script.write_text(step["run"])
                proc_env = {
                    "PATH": os.pathsep.join([str(fakes.dir), *extra_path, os.environ.get("PATH", "")]),
                    "HOME": str(temp),
                    "LANG": "C.UTF-8",
                    "GITHUB_OUTPUT": str(files["output"]),
                    "GITHUB_ENV": str(files["env"]),
                    "GITHUB_PATH": str(files["path"]),
                    "GITHUB_STEP_SUMMARY": str(files["summary"]),
                    "GITHUB_WORKSPACE": str(workdir),
                    "RUNNER_TEMP": str(temp),
                    "GITHUB_SHA": to_str(context["github"].get("sha")),
                    "GITHUB_REPOSITORY": to_str(context["github"].get("repository")),
                    "GITHUB_SERVER_URL": to_str(context["github"].get("server_url")),
                    "GITHUB_WORKFLOW_REF": to_str(context["github"].get("workflow_ref")),
                    "GITHUB_RUN_ID": to_str(context["github"].get("run_id")),
                    "GITHUB_EVENT_NAME": to_str(context["github"].get("event_name")),
                    "GITHUB_API_URL": to_str(context["github"].get("api_url")),
                    "GITHUB_GRAPHQL_URL": to_str(context["github"].get("graphql_url")),
                    **step_env,
                }
                proc = subprocess.run(
                    ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                    cwd=workdir, env=proc_env, capture_output=True, text=True, check=False,
                )
                result.log.append(f"## {label}\n{proc.stdout}{proc.stderr}")
                outputs = _read_kv_file(files["output"])
                env.update(_read_kv_file(files["env"]))
                extra_path = [p for p in files["path"].read_text().splitlines() if p] + extra_path
                result.summary += files["summary"].read_text()
                if proc.returncode != 0:
                    raise StepFailed(f"exit {proc.returncode}")
        except StepFailed as err:
            outcome = "failure"
            status["failed"] = True
            result.failed = True
            result.log.append(f"## {label} FAILED: {err}")
        context["steps"][step_id] = {"outputs": outputs, "outcome": outcome, "conclusion": outcome}
    context["env"] = dict(env)
    result.steps = context["steps"]
    result.outputs = {k: to_str(substitute(v, context, status)) for k, v in (job.get("outputs") or {}).items()}
    return result
