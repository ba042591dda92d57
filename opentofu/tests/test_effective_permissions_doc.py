"""The effective-permission table in opentofu/docs is what the policies evaluate to today."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import effective_permissions  # noqa: E402


def test_effective_permissions_doc_is_current():
    assert effective_permissions.DOC.is_file(), "run python opentofu/tests/effective_permissions.py"
    committed = effective_permissions.DOC.read_text(encoding="utf-8")
    assert committed == effective_permissions.render(), "policies changed: run python opentofu/tests/effective_permissions.py"
