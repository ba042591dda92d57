"""Makes the chart's test helpers importable (pytest runs in importlib mode) and exposes their
fixtures. The helpers live in chart_harness.py, a name no other test folder uses."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from chart_harness import (  # noqa: E402,F401
    objects,
    production_value_set,
    value_set,
    value_set_by_name,
    value_set_dir,
)
