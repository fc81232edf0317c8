"""greeter: another app, moved into this repository's images by docs/own-app.md (tests/docs/test_own_app.py)."""
