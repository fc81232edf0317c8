"""Each practice docs/practices.md claims, removed one at a time: the structure tests must then fail.

This is what makes the structure tests worth trusting: a check that passes on an image built
without the practice it names proves nothing. The mutants are built from Dockerfile.slim (the
image that can be built everywhere). A practice any app keeps must be caught by the practice
configs alone (container/structure/practices.yaml and slim.yaml), which docs/own-app.md tells
other apps to run; only this app's own choices are left to tests/images/shortener.yaml.
"""

import subprocess
from pathlib import Path

import pytest

from tests.helpers.dockerfiles import HADOLINT, IMAGES, mutate
from tests.helpers.engine import base_available, build, docker
from tests.helpers.repo import tool, tracked_files, working_copy
from tests.helpers.structure import APP_FACTS, practice_configs, structure_test

# practice -> ({text in Dockerfile.slim: what replaces it}, the check that must fail)
MUTANTS = {
    "PYTHONDONTWRITEBYTECODE": ({"ENV PYTHONDONTWRITEBYTECODE=1\n": ""}, "Metadata Test"),
    "PYTHONUNBUFFERED": ({"ENV PYTHONUNBUFFERED=1\n": ""}, "PYTHONUNBUFFERED take effect"),
    "non-root user": ({"USER 5678:5678\n": ""}, "runs as uid 5678"),
    "root-owned code": ({"COPY shortener_app": "COPY --chown=5678:5678 shortener_app"}, "cannot change the code"),
    "writable /data": ({"install -d -o 5678 -g 5678 -m 0750 /data": "true"}, "/data exists and belongs to 5678"),
    "venv without pip": ({"python -m venv --without-pip": "python -m venv"}, "no pip inside"),
    "EXPOSE": ({"EXPOSE 8000\n": ""}, "Metadata Test"),
    "LABEL": ({'org.opencontainers.image.licenses="MIT" \\\n      ': ""}, "Metadata Test"),
    "VOLUME": ({'VOLUME ["/data"]\n': ""}, "Metadata Test"),
    "copy only the package": ({"COPY shortener_app ./shortener_app": "COPY . ."}, "nothing else"),
    "no compiler": ({"    PATH=/opt/venv/bin:$PATH\n":
                     "    PATH=/opt/venv/bin:$PATH\nRUN apt-get update && apt-get install -y"
                     " --no-install-recommends gcc && rm -rf /var/lib/apt/lists/*\n"}, "no compiler"),
    # One stage: the venv is made where the image is, and binutils stays in it.
    "multi-stage build": ({"FROM base\n\n# No .pyc": "# No .pyc", "COPY --from=build /opt /opt\n": "",
                           "COPY --from=build /bytecode/ /\n": "", "COPY --from=build /app /app\n": ""},
                          "no compiler or build tool"),
    "debug symbols stripped": ({"strip --strip-debug": "true"}, "debug symbols"),
    "PostgreSQL driver opt-in": ({"ARG WITH_POSTGRES=\n": "ARG WITH_POSTGRES=1\n"}, "only in images built with"),
    "bytecode compiled at build": ({"python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/venv":
                                    "true"}, "byte-compiled"),
    "exec-form CMD": ({'CMD ["python", "/opt/container/serve.py", "--host", "0.0.0.0", "--port", "8000", \\\n'
                       '     "--timeout-graceful-shutdown", "5", "--no-server-header", \\\n'
                       '     "--proxy-headers", "--forwarded-allow-ips", '
                       '"10.0.0.0/8,172.16.0.0/12,192.168.0.0/16", \\\n'
                       '     "--limit-concurrency", "500", "--timeout-keep-alive", "65"]':
                       "CMD python /opt/container/serve.py --host 0.0.0.0 --port 8000"}, "Metadata Test"),
}  # fmt: skip
# The practices that are this app's own choices, caught by its own facts (shortener.yaml): another
# app has no PostgreSQL driver to leave out.
APP_CHOICES = {"PostgreSQL driver opt-in"}


@pytest.mark.docker
@pytest.mark.parametrize("practice", MUTANTS)
def test_structure_tests_fail_without_the_practice(practice: str, docker_engine: None) -> None:
    if reason := base_available("slim"):
        pytest.skip(reason)
    edits, failing_check = MUTANTS[practice]
    dockerfile = mutate(IMAGES["slim"], edits, f"MUTANTS[{practice!r}] in tests/images/test_practices.py")
    configs = [APP_FACTS] if practice in APP_CHOICES else practice_configs("slim")
    tag = "shortener-mutant:" + "".join(c if c.isalnum() else "-" for c in practice.lower())
    try:
        build(None, tag, text=dockerfile)
        result = structure_test(tag, "slim", configs=configs)
    finally:
        docker("image", "rm", "-f", tag, check=False)
    names = ", ".join(config.name for config in configs)
    assert result.returncode != 0, f"{names} passed on an image without {practice}"
    failed = [block for block in result.stdout.split("=== RUN: ") if "--- FAIL" in block]
    assert any(failing_check in block.splitlines()[0] for block in failed), (
        f"expected {failing_check!r} to fail; failed: {[block.splitlines()[0] for block in failed]}"
    )


@pytest.mark.docker
def test_the_build_context_is_exactly_what_the_image_needs(tmp_path: Path, docker_engine: None) -> None:
    """Send the repository, with the junk a working copy gathers, through a build that keeps the context."""
    junk = [".git/HEAD", ".env", ".env.local", "shortener.db", "shortener.db-wal", ".venv/bin/python",
            "venv/pyvenv.cfg", "shortener_app/__pycache__/main.cpython-313.pyc", ".pytest_cache/v/x",
            ".ruff_cache/x", ".mypy_cache/x", ".coverage", "htmlcov/index.html", "notes.txt",
            "shortener_app/.env", "shortener_app/local.db", "docs/x.md", ".ci/node/node_modules/x/index.js",
            "container/structure/x.yaml", "container/README.md"]  # fmt: skip
    repo = working_copy(tmp_path / "repo", dict.fromkeys(junk, "junk"))
    out = tmp_path / "context"
    docker("buildx", "build", "-q", "-f", "-", "--output", f"type=local,dest={out}", str(repo),
           stdin="FROM scratch\nCOPY . /\n")  # fmt: skip
    arrived = sorted(str(path.relative_to(out)) for path in out.rglob("*") if path.is_file())
    expected = sorted(
        name
        for name in tracked_files()
        if name in ("requirements.txt", "requirements-postgres.txt", "container/serve.py", "container/healthcheck.py")
        or name.startswith("shortener_app/")
    )
    assert arrived == expected


@pytest.mark.docker
def test_the_articles_adduser_line_fails_on_a_trixie_minimal_base(docker_engine: None) -> None:
    """Why the Dockerfiles use groupadd/useradd: the article's adduser line on today's Debian base."""
    if reason := base_available("slim"):
        pytest.skip(reason)
    labels = docker("image", "inspect", "-f", "{{json .Config.Labels}}", "python:3.13-slim")
    if "standin" not in labels:
        pytest.skip("the official python:3.13-slim still installs adduser; this shows the trixie minbase")
    article = 'adduser -u 5678 --disabled-password --gecos "" appuser'
    result = subprocess.run(["docker", "run", "--rm", "python:3.13-slim", "sh", "-c", article],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode == 127 and "adduser: not found" in result.stderr


# Practices the structure tests cannot see (an image's health check is not in their metadata
# schema), removed one at a time: hadolint, with container/hadolint.yaml, must then fail.
LINT_MUTANTS = {
    "HEALTHCHECK": (
        "HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --start-interval=0.5s --retries=2 \\\n  CMD",
        "# ",
        "DL3057",
    ),
    "OCI labels": ('      org.opencontainers.image.source="https://github.com/example/shortener" \\\n', "", "DL3049"),
    "numeric USER": ("USER 5678:5678", "USER root", "DL3002"),
}


@pytest.mark.parametrize("practice", LINT_MUTANTS)
def test_hadolint_fails_without_the_practice(practice: str, tmp_path: Path) -> None:
    original, replacement, rule = LINT_MUTANTS[practice]
    mutant = tmp_path / "Dockerfile"
    where = f"LINT_MUTANTS[{practice!r}] in tests/images/test_practices.py"
    mutant.write_text(mutate(IMAGES["slim"], {original: replacement}, where))
    result = subprocess.run([tool("hadolint"), "--no-color", "--config", HADOLINT, str(mutant)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode != 0 and rule in result.stdout, result.stdout


@pytest.mark.parametrize("practice", MUTANTS)
def test_every_mutant_still_finds_its_text_in_the_dockerfile(practice: str) -> None:
    """Without an engine too: a reworded Dockerfile fails here first, saying which mutant to update."""
    mutate(IMAGES["slim"], MUTANTS[practice][0], f"MUTANTS[{practice!r}] in tests/images/test_practices.py")


def test_a_reworded_dockerfile_names_the_mutant_to_update() -> None:
    with pytest.raises(AssertionError, match=r"MUTANTS\['x'\] .* wording changed\. Update MUTANTS\['x'\]"):
        mutate(IMAGES["slim"], {"RUN pip install --user": ""}, "MUTANTS['x']")


@pytest.mark.docker
def test_a_dependency_file_that_is_not_python_fails_the_build_until_left_out(docker_engine: None) -> None:
    """docs/troubleshooting.md: compileall stops the build on a .py that is not Python 3.13; left out
    with `-x` as it says, the build passes and so do the practices (nothing can import that file)."""
    if reason := base_available("slim"):
        pytest.skip(reason)
    template = "/opt/venv/lib/python3.13/site-packages/somepackage/templates/page.py"
    # In the build stage, where the venv is made and compiled.
    plant = {"RUN --mount=type=bind,from=base": f"RUN mkdir -p {template.rsplit('/', 1)[0]} "
             f"&& echo 'print \"Python 2\"' > {template}\nRUN --mount=type=bind,from=base"}  # fmt: skip
    where = "test_a_dependency_file_that_is_not_python_fails_the_build_until_left_out"
    # `build -q` does not show the step's output; BuildKit's own line names the step that failed.
    with pytest.raises(AssertionError, match=r"process \"/bin/sh -c python -m compileall .* exit code: 1"):
        build(None, "shortener-mutant:not-python", text=mutate(IMAGES["slim"], plant, where))
    left_out = {**plant, "unchecked-hash /opt/venv": "unchecked-hash -x '/somepackage/templates/' /opt/venv"}
    try:
        build(None, "shortener-mutant:not-python", text=mutate(IMAGES["slim"], left_out, where))
        result = structure_test("shortener-mutant:not-python", "slim", configs=practice_configs("slim"))
    finally:
        docker("image", "rm", "-f", "shortener-mutant:not-python", check=False)
    assert result.returncode == 0, result.stdout[-3000:]
