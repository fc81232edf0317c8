"""The schema's history, as Alembic revisions: `python -m shortener_app.migrate` applies them (schema.py)."""
