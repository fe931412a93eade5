"""The documentation's examples run, and its configs are valid.

* Every ```python block of a page in ``docs/`` runs: the page's blocks run in
  order, in one fresh namespace, with the working directory set to a temporary
  directory (so an example may write files). A traceback points at the
  Markdown file's own line numbers. A block whose first line is ``# not-run``
  is shown to readers but not executed (for code that needs the reader's
  files).
* Every ```toml block parses, and is validated as a run configuration with
  ``validate(load_config(...))``; a block whose first line contains
  ``# not-validated`` (a fragment of a config) is only parsed.
* ``docs/index.md`` links to every other page, and every relative link of a
  page points at a file that exists.

Shell examples (```console, ```bash, ```sh) are not executed.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tidesim.config import load_config, validate
from tidesim.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.glob("*.md"))

PYTHON_LANGS = {"python", "py"}
SKIP_RUN = "# not-run"
SKIP_VALIDATE = "# not-validated"

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown page."""

    page: Path
    lang: str
    line: int  # 1-based line number of the block's first line of code
    text: str

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def where(self) -> str:
        return f"docs/{self.page.name}:{self.line}"


def fenced_blocks(page: Path) -> list[Block]:
    """The fenced code blocks of ``page``, in order (CommonMark fences)."""
    lines = page.read_text(encoding="utf-8").split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"])
        lang = m["info"].lower()
        close = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and close.match(lines[j]) is None:
            line = lines[j]
            strip = min(indent, len(line) - len(line.lstrip(" ")))
            body.append(line[strip:])
            j += 1
        blocks.append(Block(page, lang, i + 2, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def _page_param(page: Path):
    return pytest.param(page, id=page.name)


def _toml_params():
    out = []
    for page in PAGES:
        for block in fenced_blocks(page):
            if block.lang == "toml":
                out.append(pytest.param(block, id=block.where.removeprefix("docs/")))
    return out


@pytest.mark.parametrize("page", [_page_param(p) for p in PAGES])
def test_python_examples_run(page: Path, tmp_path: Path, monkeypatch) -> None:
    blocks = [b for b in fenced_blocks(page) if b.lang in PYTHON_LANGS]
    runnable = [b for b in blocks if b.first_line != SKIP_RUN]
    if not runnable:
        return
    # A source file whose line numbers are the page's: tracebacks point at the
    # Markdown, and Numba can cache the functions an example compiles.
    n_lines = page.read_text(encoding="utf-8").count("\n") + 1
    source = [""] * n_lines
    for b in runnable:
        for k, line in enumerate(b.text.rstrip("\n").split("\n")):
            source[b.line - 1 + k] = line
    script = tmp_path / f"{page.stem.replace('-', '_')}_md.py"
    script.write_text("\n".join(source) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__", "__file__": str(script)}
    for b in runnable:
        code = compile("\n" * (b.line - 1) + b.text, str(script), "exec")
        try:
            exec(code, namespace)
        except BaseException as exc:
            exc.add_note(f"in the python block at {b.where}")
            raise


@pytest.mark.parametrize("block", _toml_params())
def test_toml_examples_are_valid(block: Block) -> None:
    try:
        doc = tomllib.loads(block.text)
    except tomllib.TOMLDecodeError as exc:
        pytest.fail(f"{block.where}: not valid TOML: {exc}")
    if SKIP_VALIDATE in block.first_line:
        return
    try:
        validate(load_config(doc))
    except ConfigError as exc:
        pytest.fail(f"{block.where}: not a valid run configuration: {exc}")


def test_index_links_every_page() -> None:
    index = DOCS / "index.md"
    text = index.read_text(encoding="utf-8")
    targets = {Path(t.split("#", 1)[0]).name for t in re.findall(r"\]\(([^)\s]+)\)", text)}
    missing = [p.name for p in PAGES if p.name != "index.md" and p.name not in targets]
    assert not missing, f"docs/index.md does not link {missing}"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_relative_links_resolve(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", "", text, flags=re.DOTALL)  # links inside code are not links
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # an absolute URL, or an anchor on this page
        path = target.split("#", 1)[0]
        if not (page.parent / path).exists():
            broken.append(target)
    assert not broken, f"docs/{page.name}: links to missing files {broken}"
