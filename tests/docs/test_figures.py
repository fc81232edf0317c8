"""Figures are measured, never typed. A size or a rate in the prose of README.md or docs/ (the workshop's
pages included) must be one a measurement script wrote into its page, the difference of two figures
in one column of such a table (the driver's size: our layers with it, less without), an output the
same page shows under a command (tests/docs/test_workshop.py runs them), or dated where it stands: a
record of a past run, which a new run does not change. A limit ("at least 10 GB free"), a default
("usually 8 MiB") and an input in binary units ("a 32 MiB header") are not measurements, and
docs/article.md quotes the 2022 article's own figures as such."""

import re
from functools import cache
from itertools import combinations
from pathlib import Path

import pytest

from tests.helpers.repo import ROOT

# The pages the measurement scripts write, whole or between markers (docs/numbers.md says which script).
MEASURED_PAGES = {
    "docs/image-comparison.md": None,  # make compare
    "docs/redirects-benchmark.md": None,  # make bench
    "docs/bytecode-benchmark.md": None,  # make bench-bytecode
    "docs/cross-build-benchmark.md": None,  # make bench-cross
    "docs/workshop/README.md": "MEASURED",  # make workshop
}
# A number with the unit of a size or a rate: "51.2 MB", "8,099 redirects/s", "57.4 MiB".
FIGURE = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?) ?(MB|MiB|GB|GiB|kB|(?:cached )?redirects/s)\b")
NUMBER = re.compile(r"(?<![\w.,])(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?![\d,])")
UNIT = re.compile(r"\b(MB|MiB|GB|GiB|kB|redirects/s)\b")
DATE = re.compile(r"\b20\d\d-\d\d-\d\d\b")
NOT_A_MEASUREMENT = re.compile(r"(?:at least|at most|up to|under|over|≤|≥|usually|the article's) $")
AN_INPUT = re.compile(r"\ban? $", flags=re.IGNORECASE)
FENCE = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)

Figure = tuple[float, str]  # (8375.0, "redirects/s")


def value(number: str) -> float:
    return float(number.replace(",", ""))


def figures(text: str) -> list[Figure]:
    return [(value(m.group(1)), m.group(2).removeprefix("cached ")) for m in FIGURE.finditer(text)]


def measured_text(path: str) -> str:
    text = (ROOT / path).read_text()
    marker = MEASURED_PAGES[path]
    if marker:
        found = re.search(rf"<!-- {marker} -->(.*?)<!-- /{marker} -->", text, flags=re.DOTALL)
        assert found, f"{path} has lost its <!-- {marker} --> block"
        return found.group(1)
    return text


def columns(text: str) -> list[list[str]]:
    """The cells of each column of each Markdown table in the text, its header first."""
    found, rows = [], []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
        elif rows:
            found += [[row[i] for row in rows if i < len(row)] for i in range(max(map(len, rows)))]
            rows = []
    return found


def column_figures(column: list[str]) -> list[Figure]:
    """A column's figures; where its header names the unit ("redirects/s (median)"), its bare numbers too."""
    header_unit = UNIT.search(column[0]) if column else None
    found = [figure for cell in column for figure in figures(cell)]
    if header_unit:
        found += [(value(number), header_unit.group(1)) for cell in column[1:] for number in NUMBER.findall(cell)]
    return found


@cache
def allowed_figures() -> list[Figure]:
    """Every figure on a measured page, and every difference of two figures in one column of its tables."""
    allowed = []
    for path in MEASURED_PAGES:
        text = measured_text(path)
        allowed += figures(text)
        for column in columns(text):
            found = column_figures(column)
            allowed += found
            allowed += [(abs(a - b), unit) for (a, unit), (b, other) in combinations(found, 2) if unit == other]
    return allowed


def matches(number: str, unit: str, candidates: list[Figure]) -> bool:
    """As precise as it is written: "12.6" is 12.55 to 12.65 of a measured value, "about 23" 22.5 to 23.5."""
    decimals = len(number.split(".")[1]) if "." in number else 0
    half = 0.5 * 10**-decimals + 1e-9
    unit = unit.removeprefix("cached ")
    return any(abs(value(number) - candidate) <= half and unit == other for candidate, other in candidates)


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks of prose (fenced blocks left out); a table is one block."""
    return [block for block in re.split(r"\n\s*\n", FENCE.sub("", text)) if block.strip()]


def shown_figures(text: str) -> list[Figure]:
    """The figures in a page's command outputs (fenced blocks), which tests/docs/test_workshop.py runs."""
    return [figure for block in FENCE.findall(text) for figure in figures(block)]


def undated_figures_not_measured(page: Path) -> list[str]:
    text = page.read_text()
    shown = shown_figures(text)
    found = []
    blocks = paragraphs(text)
    for index, block in enumerate(blocks):
        # A table's date is in its own rows or in the line that introduces it.
        context = block + (blocks[index - 1] if block.lstrip().startswith("|") and index else "")
        if DATE.search(context):
            continue
        for line in block.splitlines() if block.lstrip().startswith("|") else [" ".join(block.split())]:
            for m in FIGURE.finditer(line):
                before = line[: m.start()]
                if NOT_A_MEASUREMENT.search(before) or (AN_INPUT.search(before) and m.group(2) in ("MiB", "GiB")):
                    continue
                if not matches(m.group(1), m.group(2), [*allowed_figures(), *shown]):
                    name = page.relative_to(ROOT) if page.is_relative_to(ROOT) else page.name
                    found.append(f"{name}: {m.group(0)!r} in {line[max(0, m.start() - 80) : m.end() + 40]!r}")
    return found


def prose_pages() -> list[Path]:
    pages = [ROOT / "README.md", ROOT / "container/README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    return [
        page
        for page in pages
        if str(page.relative_to(ROOT)) not in MEASURED_PAGES or MEASURED_PAGES[str(page.relative_to(ROOT))]
    ]


@pytest.mark.parametrize("page", prose_pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_figure_on_a_page_is_measured_or_dated(page: Path) -> None:
    found = undated_figures_not_measured(page)
    assert not found, "\n".join(found)


def test_the_figure_check_refuses_a_typed_figure_and_takes_a_measured_one(tmp_path: Path) -> None:
    """The check itself, on a page made up here: a measured figure, a typed one, a dated one, a shown one."""
    measured = figures(measured_text("docs/image-comparison.md"))[0][0]
    typed = next(
        f"{measured + step / 10:.1f}" for step in range(7, 1000)
        if not matches(f"{measured + step / 10:.1f}", "MB", allowed_figures())
    )  # fmt: skip
    page = tmp_path / "page.md"
    page.write_text(
        f"Our layers are {measured:.1f} MB.\n\nThe driver is {typed} MB.\n\n"
        "On 2026-01-01 it was 999.9 MB.\n\n```\n$ du\n7777.7 MB\n```\n\nAs shown: 7777.7 MB.\n"
    )
    assert undated_figures_not_measured(page) == [f"page.md: '{typed} MB' in 'The driver is {typed} MB.'"]
    page.write_text("A 32 MiB header, usually 8 MiB, a 9.9 MB image.\n")
    assert undated_figures_not_measured(page) == [
        "page.md: '9.9 MB' in 'A 32 MiB header, usually 8 MiB, a 9.9 MB image.'"
    ]


def comparison_row(label: str) -> float:
    """A size from make compare's table by its row's label: 51.2 for '| our layers | 51.2 MB |'."""
    found = re.search(
        rf"^\| {re.escape(label)} \| ([\d.]+) MB", measured_text("docs/image-comparison.md"), re.MULTILINE
    )
    assert found, f"make compare's table has no row {label!r}"
    return float(found.group(1))


# A number can be measured and still be quoted for the wrong thing (the bytecode's 11.6 MB as the
# driver's): what pages say these parts weigh must be the difference make compare measured for them.
PARTS = {
    "the PostgreSQL driver": (
        re.compile(r"psycopg|PostgreSQL's driver|the driver|WITH_POSTGRES"),
        "our layers, --build-arg WITH_POSTGRES=1",
    ),
    "debug symbols": (re.compile(r"debug symbols|DWARF"), "our layers, debug symbols kept"),
}


@pytest.mark.parametrize("part", PARTS)
def test_every_page_gives_a_part_the_size_make_compare_measured_for_it(part: str) -> None:
    mentions, row = PARTS[part]
    size = round(abs(comparison_row(row) - comparison_row("our layers")), 1)
    wrong = []
    for page in prose_pages():
        text = page.read_text()
        shown = shown_figures(text)
        for block in paragraphs(text):
            if DATE.search(block):
                continue
            table = block.lstrip().startswith("|")
            for sentence in block.splitlines() if table else re.split(r"(?<=[.;:])\s", block.replace("\n", " ")):
                if mentions.search(sentence):
                    wrong += [
                        f"{page.relative_to(ROOT)}: {m.group(0)} in {sentence.strip()[:140]!r}"
                        for m in FIGURE.finditer(sentence)
                        if m.group(2) == "MB" and not matches(m.group(1), "MB", [(size, "MB"), *shown])
                    ]
    assert not wrong, f"{part} is {size} MB in make compare's table:\n" + "\n".join(wrong)
