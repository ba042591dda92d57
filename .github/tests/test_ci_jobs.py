"""ci.yaml's own scripts, run as GitHub runs them (ghasim)."""

import contextlib
import socket
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ghasim import FakeCommands, run_job  # noqa: E402
from workflows import REPO  # noqa: E402

sys.path.pop(0)

CI = yaml.safe_load((REPO / ".github/workflows/ci.yaml").read_text())


def only_step(name):
    job = CI["jobs"]["rust"]
    step = next(s for s in job["steps"] if s.get("name") == name)
    return {"jobs": {"rust": {**job, "steps": [step]}}}


@contextlib.contextmanager
def something_on_5432():
    """The service's port in the job's pod: the machine's PostgreSQL if it runs, else a listener."""
    try:
        socket.create_connection(("127.0.0.1", 5432), timeout=1).close()
        yield
        return
    except OSError:
        pass
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 5432))
    server.listen(8)
    try:
        yield
    finally:
        server.close()


def test_in_arc_kubernetes_mode_the_job_finds_postgresql_on_localhost_once_it_listens(tmp_path):
    """ARC's Kubernetes mode ignores the service's `options:` health check and runs the service
    in the job's pod: no `postgres` host name, and nothing waited for the server."""
    fakes = FakeCommands(tmp_path / "bin")
    fakes.add("getent", [{"match": "^hosts postgres$", "exit": 2}])
    fakes.add("sleep", [{"match": ".*"}])
    work = tmp_path / "w"
    work.mkdir()
    with something_on_5432():
        run = run_job(only_step("PostgreSQL address"), "rust", workdir=work, fakes=fakes, actions={}, github={"sha": "0" * 40})
    assert not run.failed, "\n".join(run.log)
    env = (tmp_path / "runner-temp-rust" / "env").read_text()
    assert "TEST_POSTGRES_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres" in env


def test_the_wait_gives_up_with_an_error_when_postgresql_never_answers(tmp_path):
    fakes = FakeCommands(tmp_path / "bin")
    fakes.add("getent", [{"match": "^hosts postgres$"}])  # resolves, but nothing named postgres listens
    fakes.add("sleep", [{"match": ".*"}])
    work = tmp_path / "w"
    work.mkdir()
    run = run_job(only_step("PostgreSQL address"), "rust", workdir=work, fakes=fakes, actions={}, github={"sha": "0" * 40})
    assert run.failed
    assert len(fakes.calls("sleep")) == 90, "about three minutes of retries"
    assert "did not accept connections" in "\n".join(run.log)


def test_the_wait_comes_before_every_cargo_step():
    names = [s.get("name", "") for s in CI["jobs"]["rust"]["steps"]]
    wait = names.index("PostgreSQL address")
    assert all(i > wait for i, n in enumerate(names) if n.startswith("cargo"))
