"""The cargo-deny policy CI enforces (cargo-deny itself runs in CI only: it needs the RustSec
database from the network)."""

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
POLICY = tomllib.loads((REPO / "deny.toml").read_text())


def test_every_check_is_configured():
    assert {"advisories", "licenses", "bans", "sources"} <= POLICY.keys()


def test_crates_come_only_from_crates_io():
    sources = POLICY["sources"]
    assert sources["unknown-registry"] == "deny" and sources["unknown-git"] == "deny"
    assert sources["allow-registry"] == ["https://github.com/rust-lang/crates.io-index"]
    assert not sources.get("allow-git")
    lock = (REPO / "Cargo.lock").read_text() if (REPO / "Cargo.lock").exists() else ""
    foreign = set(re.findall(r'^source = "((?!registry\+https://github.com/rust-lang/crates.io-index")[^"]+)"', lock, re.MULTILINE))
    assert not foreign, f"Cargo.lock has crates from elsewhere: {foreign}"


def test_no_copyleft_licence_is_allowed():
    allowed = POLICY["licenses"]["allow"]
    assert not [name for name in allowed if re.match(r"^(A?GPL|LGPL|MPL|EUPL|SSPL|CC-BY-SA)", name)]


def test_every_ignored_advisory_says_why():
    for entry in POLICY["advisories"].get("ignore", []):
        assert isinstance(entry, dict) and entry.get("reason"), f"advisory waiver without a reason: {entry}"


def test_the_single_tls_stack_is_enforced():
    denied = {entry["name"] for entry in POLICY["bans"]["deny"]}
    assert {"openssl-sys", "native-tls"} <= denied
