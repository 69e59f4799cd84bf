"""conftest.py - the fault suite (`make check-faults`) uses the integration
tests' fixtures, hooks and helpers (tests/integration/conftest.py,
ltxfs_helpers.py): the watchdog, teardown that always stops every node and
unmounts, and the sanitizer check."""

import importlib.util
import os
import sys

_ITEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration")
sys.path.insert(0, _ITEST)

_spec = importlib.util.spec_from_file_location("itest_conftest", os.path.join(_ITEST, "conftest.py"))
_itest = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_itest)
globals().update({k: v for k, v in vars(_itest).items() if not k.startswith("__")})

