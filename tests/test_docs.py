"""What a newcomer reads: the front page (README.md, also the package's description on the index)
and the documentation site (mkdocs.yml, docs/*.md). `make docs` builds the site in strict mode;
most checks here are ones a build does not make, and run without MkDocs; one runs the Makefile's
`docs` target on a copy of the site with a broken link, and it must fail."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from importlib.metadata import version
from pathlib import Path

import pytest

import sfn_breaker
from tests.harness import REPOSITORY

README = REPOSITORY / "README.md"
DOCS = REPOSITORY / "docs"
#: The front page is read in one or two screens; the rest belongs in the docs.
FRONT_PAGE_LINES = 120
DOCS_URL = "https://sfn-breaker.github.io/sfn-breaker/"
CHART_URL = "https://raw.githubusercontent.com/sfn-breaker/sfn-breaker/main/docs/benchmark.png"
#: A Markdown link or image, `[text](target)` or `![alt](target)`, outside code.
LINK = re.compile(r"(?P<image>!?)\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", flags=re.MULTILINE | re.DOTALL)
#: A file a page includes (pymdownx.snippets, base path: the repository's root): --8<-- "CHANGELOG.md"
SNIPPET = re.compile(r'^--8<-- "(?P<path>[^"]+)"$', flags=re.MULTILINE)


def page_text(path: Path) -> str:
    """A page as the site renders it: the files it includes by snippet in place, so that their
    links are read where they land (relative to the page, not to the included file)."""
    return SNIPPET.sub(lambda m: (REPOSITORY / m["path"]).read_text(), path.read_text())


def links(path: Path) -> list[tuple[bool, str]]:
    """(is an image, target) of every link in a Markdown file, code blocks and code spans left out."""
    text = FENCE.sub("", page_text(path))
    text = re.sub(r"`[^`\n]*`", "", text)
    return [(bool(m["image"]), m["target"]) for m in LINK.finditer(text)]


def is_relative(target: str) -> bool:
    return not re.match(r"[a-z][a-z0-9+.-]*:|#|/", target)


def test_the_front_page_is_read_in_one_or_two_screens() -> None:
    assert len(README.read_text().splitlines()) <= FRONT_PAGE_LINES


def test_the_front_page_keeps_the_two_set_up_commands() -> None:
    text = README.read_text()
    assert "make demo   # set-up + the outage story on the embedded AWS emulator" in text
    assert "make test   # set-up + lint, types and the whole test suite" in text


def test_the_front_page_shows_the_chart_and_links_to_the_benchmark_page() -> None:
    targets = links(README)
    assert (True, CHART_URL) in targets
    assert (False, f"{DOCS_URL}benchmarks/") in targets
    assert (DOCS / "benchmark.png").is_file()  # what the chart's URL serves from main


def test_the_sites_front_page_shows_the_benchmark_as_the_readme_does() -> None:
    def benchmark_rows(text: str) -> list[str]:
        return [line for line in text.splitlines() if line.startswith("| ") and "$" in line]

    index = DOCS / "index.md"
    assert len(benchmark_rows(README.read_text())) == 4
    assert benchmark_rows(index.read_text()) == benchmark_rows(README.read_text())
    assert (True, "benchmark.png") in links(index)  # the site serves docs/benchmark.png beside the page
    assert (False, "benchmarks.md") in links(index)


def test_the_front_page_has_no_relative_link_or_image() -> None:
    """README.md is the package's description on the index, where a relative path leads nowhere."""
    assert [target for _, target in links(README) if is_relative(target) or target.startswith("#")] == []


def test_the_front_page_links_only_to_docs_pages_that_exist() -> None:
    pages = {f"{DOCS_URL}{path.stem}/" for path in DOCS.glob("*.md") if path.stem != "index"} | {DOCS_URL}
    linked = {target.split("#")[0] for _, target in links(README) if target.startswith(DOCS_URL)}
    assert linked, "the front page links into the docs"
    assert linked - pages == set()


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda path: path.name)
def test_every_relative_link_in_the_docs_points_at_a_file_that_exists(page: Path) -> None:
    missing = [
        target for _, target in links(page) if is_relative(target) and not (page.parent / target.split("#")[0]).exists()
    ]
    assert missing == []


def test_the_docs_target_fails_on_any_warning(tmp_path: Path) -> None:
    """`make docs` is the strict build CI runs: one warning must fail it. (With `--quiet`, MkDocs
    raises its logger's level to ERROR, so the strict mode's warning counter never sees a warning
    and a broken link built with exit code 0.)"""
    for name in ("Makefile", "mkdocs.yml", "CHANGELOG.md", "pyproject.toml"):
        shutil.copy(REPOSITORY / name, tmp_path / name)
    shutil.copytree(DOCS, tmp_path / "docs")
    page = tmp_path / "docs" / "settings.md"
    page.write_text(page.read_text() + "\n[a page that is not there](no-such-page.md)\n")
    bin_dir = Path(sys.executable).parent

    # `-o setup`: the set-up is this test run's own environment, where MkDocs is installed
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", "setup", "docs", f"BIN={bin_dir}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode != 0, result.stdout + result.stderr
    assert "no-such-page.md" in result.stderr


def test_every_page_is_in_the_nav() -> None:
    nav = (REPOSITORY / "mkdocs.yml").read_text().split("\nnav:\n")[1].split("\n\n")[0]
    in_nav = set(re.findall(r"([\w-]+\.md)\s*$", nav, flags=re.MULTILINE))
    assert in_nav == {path.name for path in DOCS.glob("*.md")}


def test_the_changelog_page_includes_the_changelog() -> None:
    assert '--8<-- "CHANGELOG.md"' in (DOCS / "changelog.md").read_text()
    assert f"## [{sfn_breaker.__version__}]" in (REPOSITORY / "CHANGELOG.md").read_text()


def test_the_installed_version_is_the_one_version_source() -> None:
    assert version("sfn-breaker") == sfn_breaker.__version__


def test_the_fastapi_handlers_in_the_docs_are_the_examples_own() -> None:
    """docs/calling.md shows the example's exception handlers (what each outcome answers): each as
    the file has it (where create_app indents them by four spaces), so the page cannot drift from it."""
    example = (REPOSITORY / "examples" / "fastapi_app.py").read_text()
    (snippet,) = [
        block
        for block in re.findall(r"```python\n(.*?)```", (DOCS / "calling.md").read_text(), re.DOTALL)
        if "@app.exception_handler" in block
    ]
    functions = [chunk for chunk in snippet.split("\n\n\n") if chunk.startswith("@app.exception_handler")]

    assert len(functions) >= 2
    assert [f.splitlines()[0] for f in functions if textwrap.indent(f.strip("\n"), "    ") not in example] == []
