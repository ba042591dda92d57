"""The task-api image recipe: hadolint-clean, pinned, non-root, and building the same binary
as `cargo build --release -p task-api`. No Docker engine here, so the recipe is read, not run;
the image itself is built by the `image` jobs of ci.yaml and release.yaml."""

import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "crates" / "task-api" / "Dockerfile"


def instructions():
    """(instruction, arguments) pairs with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def stages():
    current, found = None, {}
    for keyword, rest in instructions():
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            current = match.group(2) or f"stage{len(found)}"
            found[current] = {"from": match.group(1), "steps": []}
        else:
            found[current]["steps"].append((keyword, rest))
    return found


def test_hadolint_is_clean():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.fail("hadolint is missing: source .ci/tools.sh")
    result = subprocess.run([hadolint, "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout
    assert "hadolint ignore" not in DOCKERFILE.read_text()


def test_hadolint_catches_a_planted_defect(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get install curl\n")
    result = subprocess.run([shutil.which("hadolint"), "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode == 1 and "DL3007" in result.stdout


def test_every_external_base_image_is_pinned_by_digest():
    names = set(stages())
    for name, stage in stages().items():
        base = stage["from"]
        if base in names:
            continue
        assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", base), f"stage {name}: {base} is not digest-pinned"


def test_builder_compiles_the_release_binary_of_the_task_api_package():
    builder = stages()["builder"]["steps"]
    runs = [rest for keyword, rest in builder if keyword == "RUN"]
    build = next(r for r in runs if r.startswith("cargo build"))
    # The README's `cargo build --release -p task-api`, plus --locked: the image uses Cargo.lock as is.
    assert build.split("&&")[0].split() == ["cargo", "build", "--release", "--locked", "-p", "task-api"]
    assert "target/release/task-api /out/task-api" in build
    cook = next(r for r in runs if r.startswith("cargo chef cook"))
    assert "--release" in cook and "--locked" in cook and "-p task-api" in cook, "dependencies built like the binary"


def test_cargo_chef_is_pinned():
    assert re.search(r"ARG CARGO_CHEF_VERSION=\d+\.\d+\.\d+", DOCKERFILE.read_text())
    assert any('--version "${CARGO_CHEF_VERSION}"' in rest and "--locked" in rest
               for keyword, rest in stages()["chef"]["steps"] if keyword == "RUN")


def test_the_package_and_binary_exist_in_the_workspace():
    manifest = tomllib.loads((REPO / "crates" / "task-api" / "Cargo.toml").read_text())
    assert manifest["package"]["name"] == "task-api"
    bins = [b["name"] for b in manifest.get("bin", [])] or [manifest["package"]["name"]]
    assert "task-api" in bins


def test_runtime_is_distroless_nonroot_with_only_the_binary():
    final_name, final = list(stages().items())[-1]
    assert final["from"].startswith("gcr.io/distroless/cc-debian12:nonroot@sha256:")
    steps = final["steps"]
    copies = [rest for keyword, rest in steps if keyword == "COPY"]
    assert copies == ["--from=builder /out/task-api /usr/local/bin/task-api"]
    assert ("USER", "65532:65532") in steps
    assert ("ENTRYPOINT", '["/usr/local/bin/task-api"]') in steps
    assert not [k for k, _ in steps if k == "RUN"], "a distroless stage has no shell to RUN in"


def test_runtime_listens_on_the_ports_the_chart_and_docs_expect():
    steps = stages()["runtime"]["steps"]
    assert ("EXPOSE", "8080 9090") in steps
    env = " ".join(rest for keyword, rest in steps if keyword == "ENV")
    assert "TASK_API_LISTEN=0.0.0.0:8080" in env
    assert "TASK_API_ADMIN_LISTEN=0.0.0.0:9090" in env


def test_dockerignore_sends_only_the_workspace():
    lines = [l.strip() for l in (REPO / ".dockerignore").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert lines[0] == "*", "exclude everything first, then re-include"
    included = {l[1:] for l in lines if l.startswith("!")}
    assert included == {"Cargo.toml", "Cargo.lock", "crates/"}
    assert "crates/**/target/" in lines
    members = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["members"]
    assert all(m.startswith("crates/") for m in members), "every workspace member must be inside the context"
