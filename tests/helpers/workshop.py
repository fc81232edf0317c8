"""The workshop's pages module (docs/workshop/pages.py), loaded from its file: docs/ is not a package."""

import importlib.util

from tests.helpers.repo import ROOT

_spec = importlib.util.spec_from_file_location("workshop_pages", ROOT / "docs" / "workshop" / "pages.py")
assert _spec and _spec.loader
pages = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pages)
