"""The README and docs/: short enough to read, and every link and name in them points at something real."""

import ast
import fnmatch
import io
import re
import shutil
import subprocess
import tokenize
from functools import cache
from pathlib import Path

import pytest

from shortener_app.config import Settings
from tests.helpers.repo import ROOT, tool

README = ROOT / "README.md"
README_LIMIT = 8_000
TWO_COMMANDS = ["docker compose up --build --wait", "make test"]
# Names the docs use that come from outside this repository (other tools' settings).
# A path (`shortener_app/`, `container/structure/practices.yaml`) or a file name (`config.py`) in a code span.
PATH_LIKE = re.compile(r"(?:\.?[\w.*-]+/)+[\w.*-]*|[\w*-]+(?:\.[\w*-]+)*\.(?:py|ya?ml|txt|in|toml|json|md)")
FROM_ELSEWHERE = {"XDG_CACHE_HOME", "SQLITE_CANTOPEN", "ALL", "DWARF", "OCI", "API", "PEP"}


def pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def reference_pages() -> list[Path]:
    """The README and docs/*.md. The workshop's pages (docs/workshop/) also name the files a participant
    makes in a folder of their own, and tests/docs/test_workshop.py checks them."""
    return [README, *sorted((ROOT / "docs").glob("*.md"))]


@cache
def repository_files() -> list[str]:
    """Tracked files, and new ones git does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return [path for path in listed if (ROOT / path).exists()]


def backticked(text: str) -> list[str]:
    """The contents of every inline `code` span, outside fenced blocks."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    return re.findall(r"`([^`\n]+)`", prose)


def two_commands(readme: str) -> list[str]:
    """The lines of the first code block under the README's "Two commands" heading."""
    section = readme.split("## Two commands", 1)[1]
    block = re.search(r"^```\w*\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    assert block, "no code block under ## Two commands"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


@cache
def defined_tests() -> set[str]:
    names = set()
    for path in (ROOT / "tests").rglob("*.py"):
        names |= set(re.findall(r"^\s*(?:async )?def (test_\w+)", path.read_text(), flags=re.MULTILINE))
    return names


def test_the_readme_fits_in_8000_characters() -> None:
    size = len(README.read_text())
    assert size <= README_LIMIT, f"README.md is {size} characters; move depth into docs/ (limit {README_LIMIT})"


def test_the_readme_gives_the_two_commands_ci_runs() -> None:
    # .ci/run reads these two lines out of the README and runs them; it relies on this shape.
    assert two_commands(README.read_text()) == TWO_COMMANDS


def test_every_relative_link_and_anchor_in_the_docs_resolves() -> None:
    result = subprocess.run(
        [tool("md-dead-link-check"), "--config", "tests/docs/markdown-links.toml", "--untrack", "--no-color"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_test_a_page_names_exists(page: Path) -> None:
    missing = []
    for name in sorted(set(re.findall(r"\btest_\w+\*?(?:\.py)?", page.read_text()))):
        if name.endswith(".py"):
            found = any(Path(path).name == name for path in repository_files())
        elif name.endswith("*"):
            found = any(test.startswith(name[:-1]) for test in defined_tests())
        else:
            found = name in defined_tests()
        if not found:
            missing.append(name)
    assert not missing, f"{page.relative_to(ROOT)} names tests that tests/ does not have: {missing}"


@pytest.mark.parametrize("page", reference_pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_file_a_page_names_exists(page: Path) -> None:
    files = repository_files()
    folders = {str(parent) for path in files for parent in Path(path).parents if str(parent) != "."}
    text = page.read_text()
    # Files a page has its reader write ("Write `container/structure/greeter.yaml`:", docs/own-app.md).
    written = set(re.findall(r"^Write `([^`]+)`:$", text, re.MULTILINE))
    missing = []
    for span in backticked(text):
        name = span.split()[0] if span.split() else ""
        if not PATH_LIKE.fullmatch(name) or name.startswith(("/", "*")) or name in written:
            continue
        bare = name.rstrip("/")
        if not any(fnmatch.fnmatch(path, bare) or fnmatch.fnmatch(path, f"*/{bare}") for path in [*files, *folders]):
            missing.append(name)
    assert not missing, f"{page.relative_to(ROOT)} names files this repository does not have: {missing}"


def test_the_settings_table_lists_exactly_the_apps_settings() -> None:
    app = (ROOT / "docs" / "app.md").read_text()
    table = app.split("## Settings", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.MULTILINE))
    assert documented == {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize("page", reference_pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_upper_case_name_a_page_uses_is_a_setting_or_in_the_code(page: Path) -> None:
    code = "\n".join(
        (ROOT / path).read_text(errors="ignore") for path in repository_files() if not path.endswith(".md")
    )
    settings = {name.upper() for name in Settings.model_fields}
    missing = []
    for span in backticked(page.read_text()):
        for name in re.findall(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b", span):
            if name not in settings and name not in FROM_ELSEWHERE and name not in code:
                missing.append(name)
    assert not missing, f"{page.relative_to(ROOT)} uses names neither a setting nor in the code: {missing}"


@pytest.mark.parametrize("page", pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_no_page_cites_line_numbers(page: Path) -> None:
    # Line numbers drift with every edit and no test can hold them; name the instruction instead.
    cited = re.findall(r"\bl\. ?\d+|\blines? \d+|#L\d+", page.read_text())
    assert not cited, f"{page.relative_to(ROOT)} cites line numbers: {cited}"


def test_the_practices_page_and_the_mutants_name_the_same_practices() -> None:
    from tests.images.test_practices import LINT_MUTANTS, MUTANTS

    practices = (ROOT / "docs" / "practices.md").read_text()
    named = set()
    for page in reference_pages():
        for clause in re.findall(r"\bmutants? ([^;|\n]+)", page.read_text()):
            named |= set(re.findall(r"`([^`]+)`", clause))
    assert named <= set(MUTANTS), f"the docs name mutants tests/images/test_practices.py lacks: {named - set(MUTANTS)}"
    unnamed = {practice for practice in MUTANTS if f"`{practice}`" not in practices}
    assert not unnamed, f"docs/practices.md does not say which practice these mutants prove: {unnamed}"
    linted = set(re.findall(r"test_hadolint_fails_without_the_practice\[([^\]]+)\]", practices))
    assert linted and linted <= set(LINT_MUTANTS), f"unknown hadolint mutants: {linted - set(LINT_MUTANTS)}"


def host_commands() -> list[tuple[str, str]]:
    """Every command the docs give a reader to run on their own machine: sh and console blocks, and
    the commands in postgres.env.example's comments (Dockerfile lines in diffs run in a container)."""
    found = []
    for page in [*pages(), *sorted((ROOT / "docs" / "workshop").rglob("*.md"))]:
        for block in re.findall(r"^```(?:sh|console|bash)[^\n]*\n(.*?)^```", page.read_text(), re.M | re.S):
            found += [(page.name, line) for line in block.splitlines() if line.strip()]
    example = ROOT / "postgres.env.example"
    found += [(example.name, line) for line in example.read_text().splitlines() if line.startswith("#   ")]
    return found


def test_no_command_for_a_readers_machine_needs_gnu_sed() -> None:
    """macOS's BSD sed takes `-i` only with a suffix argument: `sed -i "s/.../"` fails there."""
    gnu_only = [f"{name}: {line.strip()}" for name, line in host_commands() if re.search(r"\bsed -i\b", line)]
    assert gnu_only == [], f"commands that fail with BSD sed: {gnu_only}"


def test_the_postgres_env_command_writes_a_password_into_a_new_env_file(tmp_path: Path) -> None:
    [command] = [line.removeprefix("#   ") for name, line in host_commands()
                 if name == "postgres.env.example" and "POSTGRES_PASSWORD" in line]  # fmt: skip
    shutil.copy(ROOT / "postgres.env.example", tmp_path / "postgres.env.example")
    subprocess.run(["sh", "-ec", command], cwd=tmp_path, check=True)
    assert re.search(r"^POSTGRES_PASSWORD=[0-9a-f]{32}$", (tmp_path / ".env").read_text(), re.M)


# Files whose comments name repository paths: the manifests, the Swarm stack, compose, the
# Dockerfiles, the container's own files and CI. A path there is a pointer a reader follows.
# (fnmatch: `*` crosses folders, so "container/*" is every file under container/.)
COMMENTED = ["deploy/*.yaml", "compose*.yaml", "Dockerfile.*", "container/*", ".github/*"]
# tests/..., shortener_app/..., container/..., deploy/..., docs/...; not inside a longer path or URL.
REPO_PATH = re.compile(r"(?<![\w./-])(?:tests|shortener_app|container|deploy|docs)/[\w./*-]*")


def comments(path: Path) -> str:
    """The prose of a file: a Markdown page whole, a Python file's comments and docstrings, and
    everything after a `#` that starts a comment elsewhere (YAML, nginx, Dockerfile, shell)."""
    text = path.read_text()
    if path.suffix == ".md":
        return text
    if path.suffix == ".py":
        tokens = tokenize.generate_tokens(io.StringIO(text).readline)
        found = [token.string for token in tokens if token.type == tokenize.COMMENT]
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                found.append(ast.get_docstring(node) or "")
        return "\n".join(found)
    return "\n".join(m.group(1) for m in re.finditer(r"(?:^|\s)#(.*)$", text, flags=re.MULTILINE))


def paths_named_in_comments() -> dict[str, list[str]]:
    named = {}
    for file in repository_files():
        if any(fnmatch.fnmatch(file, pattern) for pattern in COMMENTED):
            found = [m.group(0).rstrip(".,:;)") for m in REPO_PATH.finditer(comments(ROOT / file))]
            named[file] = sorted({name.split("#")[0] for name in found})
    return named


def test_every_repository_path_a_comment_names_exists() -> None:
    """A test moved (tests/test_swarm.py to tests/deploy/) leaves the comments that named it pointing at nothing."""
    files = repository_files()
    existing = set(files) | {str(parent) for path in files for parent in Path(path).parents}
    named = paths_named_in_comments()
    assert "tests/deploy/test_kubernetes.py" in named["deploy/kubernetes/kustomization.yaml"], "no comment read"
    missing = [
        f"{file}: {name}"
        for file, names in named.items()
        for name in names
        if not any(fnmatch.fnmatch(path, name.rstrip("/")) for path in existing)
    ]
    assert not missing, "comments name paths this repository does not have:\n" + "\n".join(missing)


THIS_RELEASE = re.compile(r"This code is release (\d+\.\d+\.\d+)")
RELEASE = re.compile(r"\brelease (\d+\.\d+\.\d+)")


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_the_version_in_the_code_is_the_release_the_docs_describe() -> None:
    """docs/app.md says which release this code is; the app's `version` (on /about, in the OpenAPI
    schema) is that one, and every other release the docs, tests and code name is an older one."""
    from shortener_app.main import create_app

    stated = {str(page.relative_to(ROOT)): THIS_RELEASE.findall(page.read_text()) for page in pages()}
    stated = {page: found for page, found in stated.items() if found}
    assert list(stated) == ["docs/app.md"] and len(stated["docs/app.md"]) == 1, (
        f"docs/app.md, and only it, says once 'This code is release X.Y.Z': {stated or 'no page does'}"
    )
    [this] = stated["docs/app.md"]
    assert create_app().version == this, f"main.py says {create_app().version}, docs/app.md release {this}"
    texts = [*pages(), *sorted((ROOT / "tests").rglob("*.py")), *sorted((ROOT / "shortener_app").rglob("*.py"))]
    newer = [
        f"{path.relative_to(ROOT)}: release {named}"
        for path in texts
        for named in RELEASE.findall(THIS_RELEASE.sub("", path.read_text()))
        if version(named) >= version(this)
    ]
    assert not newer, f"this code is release {this}; these name it or a later one as another release: {newer}"


def test_the_reserved_keys_the_docs_list_are_the_codes() -> None:
    from shortener_app.validation import RESERVED_KEYS

    app = " ".join((ROOT / "docs" / "app.md").read_text().split())
    listed = re.search(r"not one of the reserved words \(([^)]*)\)", app)
    assert listed, "docs/app.md no longer lists the reserved words"
    assert set(re.findall(r"`([^`]+)`", listed.group(1))) == set(RESERVED_KEYS)


@pytest.mark.parametrize("page", reference_pages(), ids=lambda page: str(page.relative_to(ROOT)))
def test_every_health_body_a_page_shows_has_the_apps_fields(page: Path) -> None:
    from shortener_app.schemas import Health

    wrong = []
    for body in re.findall(r'\{"status"[^{}]*\}', page.read_text()):
        # Either JSON as the app sends it or the list of its names: {"status", "database", ...}.
        names = re.findall(r'"(\w+)"\s*:', body) if ":" in body else re.findall(r'"(\w+)"', body)
        if set(names) != set(Health.model_fields):
            wrong.append(body)
    assert not wrong, f"{page.relative_to(ROOT)}: /health's body has {sorted(Health.model_fields)}, not {wrong}"
