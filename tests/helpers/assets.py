"""The container assets (container/*.py) as modules: they are files the images install, not a package."""

import importlib.util
from types import ModuleType

from .repo import ROOT

ASSETS = ROOT / "container"


def asset(name: str) -> ModuleType:
    """container/<name>.py, loaded by path."""
    spec = importlib.util.spec_from_file_location(f"container_{name}", ASSETS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
