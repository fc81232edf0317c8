"""The Dockerfiles as text: their instructions, and edits of them that say when their text is gone."""

import re

from .repo import ROOT

IMAGES = {"slim": "Dockerfile.slim", "alpine": "Dockerfile.alpine"}
BASES = {"slim": "python:3.13-slim", "alpine": "python:3.13-alpine"}
# hadolint's settings for both Dockerfiles: every finding fails, and a missing label or HEALTHCHECK is one.
HADOLINT = str(ROOT / "container" / "hadolint.yaml")


def instructions(dockerfile: str) -> list[str]:
    """The file's instructions, continuation lines joined and comments dropped."""
    text = (ROOT / dockerfile).read_text()
    text = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def mutate(dockerfile: str, edits: dict[str, str], where: str) -> str:
    """`dockerfile` with each original text replaced once; a text it no longer holds says what to update."""
    text = (ROOT / dockerfile).read_text()
    for original, replacement in edits.items():
        assert original in text, (
            f"{where} looks for {original!r} in {dockerfile}, which no longer has it: the Dockerfile's "
            f"wording changed. Update {where} to the text that now does this practice."
        )
        text = text.replace(original, replacement, 1)
    return text
