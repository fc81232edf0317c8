"""The migrate step: `python -m shortener_app.migrate` brings the schema to head, and exits.

Run once per deployment, before the app starts, from the same image with this command instead of
the server's: compose's `migrate` service, the Swarm stack's job, the Kubernetes Job. It reads the
app's own settings (DB_URL) and prints one line: what it did, or why it could not.

    python -m shortener_app.migrate                 # to head; nothing to do when already there
    python -m shortener_app.migrate --downgrade 0001_initial   # back to a revision (loses data: docs/app.md)
"""

import argparse
import sys

from sqlalchemy.exc import SQLAlchemyError

from . import datadir, schema
from .config import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shortener_app.migrate", description=__doc__.splitlines()[0])
    parser.add_argument("--downgrade", metavar="REVISION", help="go back to this revision instead of up to head")
    arguments = parser.parse_args(argv)
    db_url = get_settings().db_url
    problem = datadir.problem(db_url)
    if problem is not None:
        print(f"migrate: {problem}", file=sys.stderr)  # noqa: T201 - what to change, in the datadir's words
        return 1
    try:
        done = schema.downgrade(db_url, arguments.downgrade) if arguments.downgrade else schema.upgrade(db_url)
    except (schema.SchemaError, SQLAlchemyError) as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        print(f"migrate: failed: {reason}", file=sys.stderr)  # noqa: T201 - the step's one line
        return 1
    print(f"migrate: {done}")  # noqa: T201 - the step's one line
    return 0


if __name__ == "__main__":
    sys.exit(main())
