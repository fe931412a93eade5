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

* Every ``$ tidesim ...`` line of a ```console block (in ``docs/`` and the
  README) that is followed by output is run in-process, in a temporary
  directory, and its stdout and stderr must be the output shown, except for
  what changes from run to run (the wall time); a shown ``tidesim: error:``
  line means exit status 2. Commands shown without output are not run here.

Other shell examples (```bash, ```sh) are not executed.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tidesim.config import load_config, validate
from tidesim.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.glob("*.md"))
README = DOCS.parent / "README.md"

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
        return f"{self.page.relative_to(DOCS.parent)}:{self.line}"


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


PROMPT = "$ "
# what a real run prints differently every time: (pattern, what the test compares)
VARIES = [(re.compile(r"^wall time +\S+ s$"), "wall time <varies>"),
          (re.compile(r"^( +wall time +)\S+ s \(\S+ node-cycles/s\)$"),
           r"\1<varies> s (<varies> node-cycles/s)"),
          (re.compile(r"^(.* s virtual, \d+ messages, )\S+ s wall$"), r"\1<varies> s wall")]


@dataclass(frozen=True)
class Shown:
    """A ``$ tidesim ...`` command of a console block and the output shown under it."""

    block: Block
    line: int
    command: str
    output: str


def shown_outputs(pages: list[Path]) -> list[Shown]:
    """The ``$ tidesim`` commands of ``pages`` whose output is shown."""
    found = []
    for page in pages:
        for block in fenced_blocks(page):
            if block.lang != "console":
                continue
            lines = block.text.rstrip("\n").split("\n")
            starts = [i for i, line in enumerate(lines) if line.startswith(PROMPT)]
            ends = [*starts[1:], len(lines)]
            for i, end in zip(starts, ends[: len(starts)], strict=True):
                command, output = lines[i][len(PROMPT):], lines[i + 1:end]
                if command.startswith("tidesim ") and any(line.strip() for line in output):
                    found.append(Shown(block, block.line + i, command, "\n".join(output)))
    return found


def _comparable(text: str) -> list[str]:
    lines = text.rstrip("\n").split("\n")
    for k, line in enumerate(lines):
        for pattern, replacement in VARIES:
            if pattern.match(line):
                lines[k] = pattern.sub(replacement, line)
    return lines


SHOWN = shown_outputs([*PAGES, README])


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


def test_shown_outputs_are_found() -> None:
    commands = [shown.command for shown in SHOWN]
    assert "tidesim run --preset callisto-test" in commands


@pytest.mark.parametrize(
    "shown",
    [pytest.param(s, id=f"{s.block.page.name}:{s.line}") for s in SHOWN],
)
def test_shown_outputs_match_real_runs(shown: Shown, tmp_path: Path, monkeypatch,
                                       capsys) -> None:
    from tidesim.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(shlex.split(shown.command, comments=True)[1:])
    out, err = capsys.readouterr()
    where = f"{shown.block.page.name}:{shown.line}: {shown.command}"
    assert _comparable(out + err) == _comparable(shown.output), where
    expect_code = 2 if shown.output.startswith("tidesim: error: ") else 0
    assert code == expect_code, where


# where the pages state a preset's run length: (file, pattern with the preset and the seconds)
RUN_LENGTH_CLAIMS = [
    (README, r"runs the hardware rig preset \(`(hitl8)`:.*?for (\S+) s of simulated time"),
    (DOCS / "quickstart.md", r"runs the `(hitl8)` preset \(the 8-node hardware rig, (\S+) s"),
    (DOCS / "config.md", r"\*\*`(hitl8)`\*\* is the hardware rig:.*?It runs (\S+) s\."),
    (DOCS / "config.md", r"^\| `([\w-]+)` \|[^\n]*\| (\S+) s \|$"),  # the table's until column
]


@pytest.mark.parametrize("page, pattern", [pytest.param(*c, id=f"{c[0].name}-{i}")
                                           for i, c in enumerate(RUN_LENGTH_CLAIMS)])
def test_stated_run_lengths_are_the_presets(page: Path, pattern: str) -> None:
    from tidesim.presets import PRESETS

    claims = re.findall(pattern, page.read_text(encoding="utf-8"), flags=re.S | re.M)
    assert claims, f"{page.name}: no match for {pattern}"
    for name, seconds in claims:
        assert float(seconds) == PRESETS[name]["run"]["until_s"], (page.name, name)


# ------------------------------------------------------------ the README's commands

EXAMPLE_FILES = [("quickstart.md", "my.toml"), ("studies.md", "study.toml")]


@pytest.mark.parametrize("page, name", EXAMPLE_FILES)
def test_example_files_are_the_ones_shown(page: str, name: str) -> None:
    shown = [tomllib.loads(b.text) for b in fenced_blocks(DOCS / page) if b.lang == "toml"]
    example = tomllib.loads((DOCS / "examples" / name).read_text(encoding="utf-8"))
    assert example in shown, f"docs/examples/{name} is not the config shown in docs/{page}"


def readme_commands() -> list[str]:
    """The ``tidesim`` command lines of the README's console blocks."""
    commands = []
    for block in fenced_blocks(README):
        if block.lang != "console":
            continue
        for line in block.text.splitlines():
            text = " ".join(shlex.split(line, comments=True))
            if text.startswith("tidesim "):
                commands.append(text)
    return commands


README_COMMANDS = readme_commands()


def test_readme_commands_are_found() -> None:
    steps = [step.split()[1] for line in README_COMMANDS for step in line.split("&&")]
    assert set(steps) == {"run", "sweep", "plot", "packetnet"}


@pytest.mark.parametrize("line", README_COMMANDS)
def test_readme_commands_run(line: str, tmp_path: Path, monkeypatch, capsys) -> None:
    """Each command line as shown, from a directory that has the repository's
    ``docs/``; the steps of a ``&&`` chain in order."""
    from tidesim.cli import main

    (tmp_path / "docs").symlink_to(DOCS, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    for step in line.split("&&"):
        argv = shlex.split(step)
        assert argv[0] == "tidesim", step
        code = main(argv[1:])
        out, err = capsys.readouterr()
        assert code == 0, f"{step}: {err}"
        assert err == "" and out, step
