"""Where the app's own files are: the demo page, the docs page and their scripts."""

from pathlib import Path

STATIC = Path(__file__).with_name("static")
