"""Static checks on both Dockerfiles; they need no engine, so they run everywhere."""

import re
import subprocess

import pytest

from tests.helpers.dockerfiles import HADOLINT, IMAGES, instructions
from tests.helpers.repo import APP_PACKAGE, ROOT, tool

# The only instructions the two files may differ in: the base image (each stage), where the build stage runs
# (slim's on the builder's platform, cross-building; Alpine's on the image's), how the build stage gets
# binutils (apt or apk), and how the user is made.
# A size, a share or a ratio: what a benchmark measures, not a setting the file makes.
MEASURED = re.compile(r"\d+(?:\.\d+)? ?(?:MB|MiB|kB|KB|GB|%)\b|\b(?:a third|half|twice|times faster)\b", re.I)
OS_SPECIFIC = (
    re.compile(r"^FROM (--platform=\$BUILDPLATFORM )?python:3\.13-(slim|alpine)( AS (base|build))?$"),
    re.compile(r"^RUN (apt-get update && apt-get install|apk add) .*binutils(-multiarch)?$"),
    re.compile(r"^RUN (groupadd|addgroup) "),
)


@pytest.mark.parametrize("dockerfile", IMAGES.values())
def test_hadolint_finds_nothing_at_any_level(dockerfile: str) -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", "--config", HADOLINT, dockerfile],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_slim_and_alpine_keep_the_same_contract() -> None:
    slim, alpine = instructions(IMAGES["slim"]), instructions(IMAGES["alpine"])
    assert len(slim) == len(alpine), "the Dockerfiles have a different number of instructions"
    for ours, theirs in zip(slim, alpine, strict=True):
        if any(pattern.match(ours) and pattern.match(theirs) for pattern in OS_SPECIFIC):
            continue
        assert ours == theirs, f"Dockerfiles drifted apart:\n  slim:   {ours}\n  alpine: {theirs}"


@pytest.mark.parametrize("dockerfile", IMAGES.values())
def test_every_step_opens_with_a_comment_that_says_why(dockerfile: str) -> None:
    paragraphs = (ROOT / dockerfile).read_text().split("\n\n")
    for paragraph in paragraphs:
        assert paragraph.lstrip().startswith("#"), f"{dockerfile}: a step without a comment:\n{paragraph}"


@pytest.mark.parametrize("flavour", ["practices", *IMAGES])
def test_structure_configs_exist_for_both_images(flavour: str) -> None:
    config = ROOT / "container" / "structure" / f"{flavour}.yaml"
    assert config.is_file() and "schemaVersion: 2.0.0" in config.read_text()


def test_no_dockerfile_pulls_a_frontend_image() -> None:
    for dockerfile in IMAGES.values():
        first = (ROOT / dockerfile).read_text().lstrip().splitlines()[0]
        assert not first.lower().startswith("# syntax"), f"{dockerfile}: a # syntax line pulls an image"


@pytest.mark.parametrize("dockerfile", IMAGES.values())
def test_the_sample_app_is_named_in_at_most_two_instructions(dockerfile: str) -> None:
    """A template user edits the app's name in two places: its UVICORN_APP setting and its COPY."""
    named = [line for line in instructions(dockerfile) if APP_PACKAGE in line]
    assert len(named) <= 2, f"{dockerfile} names {APP_PACKAGE} in {len(named)} instructions: {named}"


@pytest.mark.parametrize("dockerfile", IMAGES.values())
def test_comments_are_at_most_35_percent_of_the_lines_and_quote_no_measured_number(dockerfile: str) -> None:
    # Of the lines that are not blank, as the best templates are counted (Docker's own about 29%).
    """One line of why a step, at the density of the best templates; measured figures drift, so they
    live in the generated pages (docs/numbers.md), never in a comment."""
    lines = [line for line in (ROOT / dockerfile).read_text().splitlines() if line.strip()]
    comments = [line for line in lines if line.lstrip().startswith("#")]
    assert len(comments) <= 0.35 * len(lines), f"{dockerfile}: {len(comments)} of {len(lines)} lines are comments"
    figures = [line for line in comments if MEASURED.search(line)]
    assert figures == [], f"{dockerfile}: comments that quote a measured figure: {figures}"


@pytest.mark.parametrize("dockerfile", IMAGES.values())
def test_every_practice_a_dockerfile_links_is_a_section_of_the_practices_page(dockerfile: str) -> None:
    headings = re.findall(r"^## (.+)$", (ROOT / "docs" / "practices.md").read_text(), re.MULTILINE)
    # GitHub's anchors: lower case, punctuation but '-' dropped, spaces to '-'.
    anchors = {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}
    linked = re.findall(r"docs/practices\.md#([\w-]+)", (ROOT / dockerfile).read_text())
    assert linked, f"{dockerfile} links no practice"
    assert set(linked) <= anchors, f"{dockerfile} links sections docs/practices.md lacks: {set(linked) - anchors}"


def test_slim_is_cross_built_only_the_user_step_runs_on_the_images_platform() -> None:
    """docs/practices.md#cross-built-not-emulated: every RUN that installs or compiles is in a stage on the
    builder's own platform, so a build for another platform emulates only the image stage's user step."""
    stages: list[tuple[str, list[str]]] = []
    for line in instructions(IMAGES["slim"]):
        if line.startswith("FROM "):
            stages.append((line, []))
        elif line.startswith("RUN "):
            stages[-1][1].append(line)
    on_target = [run for start, runs in stages if "--platform=$BUILDPLATFORM" not in start for run in runs]
    assert [run.split()[1] for run in on_target] == ["groupadd"], (
        f"RUN steps that would run under emulation for another platform: {on_target}"
    )
    assert any("--platform=$BUILDPLATFORM" in start and runs for start, runs in stages), "no cross-built stage"
