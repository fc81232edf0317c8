"""The workshop's pages module (docs/workshop/pages.py), loaded from its file: docs/ is not a package."""

import importlib.util

from tests.helpers.repo import ROOT

_spec = importlib.util.spec_from_file_location("workshop_pages", ROOT / "docs" / "workshop" / "pages.py")
assert _spec and _spec.loader
pages = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pages)


def commands_on(step: str, image: str) -> list:
    """The commands step's page runs with `docker run --rm IMAGE`, each with the output it shows."""
    page = (pages.STEPS / step / "README.md").read_text()
    prefix = f"docker run --rm {image} "
    return [
        command for block in pages.console_blocks(page) for command in block.commands if command.line.startswith(prefix)
    ]
