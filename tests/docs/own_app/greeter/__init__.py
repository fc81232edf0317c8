"""greeter: another app, moved into this repository's images by docs/own-app.md (tests/test_own_app.py)."""
