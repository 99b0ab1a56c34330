"""The documentation says what the product does, and what it says works.

- Every shell command in README.md and docs/*.md (the lines of ```bash, ```sh
  and ```shell blocks, and `$ ` lines anywhere, e.g. in ```console blocks):
  each `genseq ...` command (also `python -m genseq`, `python cli.py`,
  `torchrun ... -m genseq`) is parsed by Click itself, down to its
  subcommand, without running it: the subcommand exists and its options and
  arguments are valid. Other programs are not run; a Python script they name
  must exist.
- Every relative Markdown link in README.md, docs/, datasets/ and
  genseq/models/*.md resolves to a file or folder of the checkout.
- The shipped Markdown speaks of the product alone: no internal work periods
  or issue numbers.
- The tests the reliability table names exist; the version agrees in
  pyproject.toml, genseq/__init__.py, CHANGELOG.md and `genseq --version`;
  the README keeps the command CI runs.
"""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import genseq
from genseq.cli import main

ROOT = Path(__file__).resolve().parents[1]

LINK_DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), *sorted((ROOT / "datasets").rglob("*.md")),
             *sorted((ROOT / "genseq" / "models").glob("*.md")), ROOT / "bench" / "README.md",
             ROOT / "samples" / "README.md", ROOT / "samples" / "lines60.md"]
COMMAND_DOCS = LINK_DOCS  # every shipped page's commands parse, the recipes and model cards' too
SHIPPED_DOCS = LINK_DOCS
INTERNAL = re.compile(r"(?i)session [0-9]|issue #?[0-9]|an earlier (bundled|sitting)")
SHELL_BLOCKS = {"bash", "sh", "shell", "console"}
OPERATORS = {"&&", "||", ";", "|", "&"}


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


# -- extracting commands ---------------------------------------------------------------------------------

def shell_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, command line) of every shell command in a Markdown file:
    the lines of bash/sh/shell blocks (continuations joined, comments kept for
    shlex to drop) and `$ ` lines anywhere; in console blocks only `$ ` lines."""
    out, fence, lang, pending, start = [], None, "", "", 0
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        m = re.match(r"^(`{3,}|~{3,})\s*([\w+-]*)", line)
        if m and (fence is None or line.startswith(fence)):
            if fence is None:
                fence, lang = m.group(1), m.group(2).lower()
            else:
                fence, lang = None, ""
            continue
        if line.startswith("$ "):
            out.append((n, line[2:]))
            continue
        if fence is None or lang not in SHELL_BLOCKS or lang == "console":
            continue
        if not pending:
            start = n
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line and not line.startswith("#"):
            out.append((start, line))
    return out


def simple_commands(line: str) -> list[list[str]]:
    """The simple commands of a shell line: split at && || ; | &, without
    redirections and leading VAR=value assignments."""
    line = re.sub(r"(?<!\S)\d*(?:>>?|<)(?:&\d+|\s*[^\s&|;]+)", " ", line)  # redirections: > f, 2>&1, < f
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    lex.commenters = "#"
    cmds, cur = [], []
    for tok in lex:
        if tok in OPERATORS:
            cmds.append(cur)
            cur = []
        else:
            cur.append(tok)
    cmds.append(cur)
    result = []
    for c in cmds:
        while c and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", c[0]):
            c = c[1:]
        if c:
            result.append(c)
    return result


def genseq_args(cmd: list[str]) -> list[str] | None:
    """The arguments after `genseq` if this simple command runs genseq's CLI, else None."""
    prog = Path(cmd[0]).name
    if prog == "genseq":
        return cmd[1:]
    if re.fullmatch(r"python[0-9.]*", prog) and len(cmd) > 1:
        if cmd[1] == "cli.py":
            return cmd[2:]
        if cmd[1:3] == ["-m", "genseq"]:
            return cmd[3:]
    if prog == "torchrun" and "-m" in cmd:
        i = cmd.index("-m")
        if cmd[i + 1:i + 2] == ["genseq"]:
            return cmd[i + 2:]
    return None


def script_path(cmd: list[str]) -> str | None:
    """The script a `python SCRIPT ...` command runs, if any (not -m, -c or stdin)."""
    if not re.fullmatch(r"python[0-9.]*", Path(cmd[0]).name) or len(cmd) < 2:
        return None
    return None if cmd[1].startswith("-") else cmd[1]


def all_commands():
    for doc in COMMAND_DOCS:
        for n, line in shell_lines(doc):
            for cmd in simple_commands(line):
                yield pytest.param(cmd, id=f"{rel(doc)}:{n}:{' '.join(cmd)[:60]}")


COMMANDS = list(all_commands())
GENSEQ_COMMANDS = [p for p in COMMANDS if genseq_args(p.values[0]) is not None]
SCRIPT_COMMANDS = [p for p in COMMANDS if script_path(p.values[0]) is not None]


def parse(args: list[str]) -> None:
    """Resolve the subcommand chain and let Click parse the options and arguments
    of the last command (`make_context` parses and converts, runs nothing)."""
    cmd, name, parent = main, "genseq", None
    while isinstance(cmd, click.Group):
        if not args or args[0].startswith("-"):  # options of the group itself (--help, --version)
            try:
                cmd.make_context(name, list(args), parent=parent)
            except click.exceptions.Exit:
                pass
            return
        ctx = click.Context(cmd, info_name=name, parent=parent)
        sub = cmd.get_command(ctx, args[0])
        if sub is None:
            raise click.UsageError(f"no such command {args[0]!r} in `{ctx.command_path}`")
        cmd, name, parent, args = sub, args[0], ctx, args[1:]
    try:
        cmd.make_context(name, list(args), parent=parent)
    except click.exceptions.Exit:  # --help
        pass


@pytest.fixture
def no_file_opening(monkeypatch, tmp_path):
    """Parse in an empty folder, and let click.File arguments stand for files
    that exist where the reader runs the command (`--file letter.txt`)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(click.File, "convert", lambda self, value, param, ctx: value)


def test_the_docs_hold_genseq_commands():
    assert len(GENSEQ_COMMANDS) > 50, "the command extraction found too few commands"
    found = {" ".join(p.values[0][:2]) for p in GENSEQ_COMMANDS}
    assert {"genseq write", "genseq sample", "genseq train", "genseq capture"} <= found


@pytest.mark.parametrize("cmd", GENSEQ_COMMANDS)
def test_genseq_command_parses(cmd, no_file_opening):
    try:
        parse(genseq_args(cmd))
    except click.ClickException as err:
        pytest.fail(f"{shlex.join(cmd)}\n  {type(err).__name__}: {err.format_message()}")


@pytest.mark.parametrize("cmd", SCRIPT_COMMANDS)
def test_python_script_exists(cmd):
    script = script_path(cmd)
    assert (ROOT / script).is_file(), f"{shlex.join(cmd)}: no {script} in the checkout"


def test_the_parser_catches_what_it_should(no_file_opening):
    parse(["write", "Hello", "--style", "1", "--bias", "2", "-o", "x.svg"])
    parse(["train", "handwriting", "a.h5", "b.h5", "--mix", "0.5,0.5", "-o", "runs/x"])
    parse(["--version"])
    for bad in (["write", "Hello", "--no-such-option"], ["nosuch"], ["train", "nosuch"],
                ["write", "--bias", "many"], ["sample", "--length", "-1"], ["train", "text"]):
        with pytest.raises(click.ClickException):
            parse(bad)
    assert simple_commands("A=1 genseq write x -o y.svg > log 2>&1 && echo done # note") == [
        ["genseq", "write", "x", "-o", "y.svg"], ["echo", "done"]]


# -- links -------------------------------------------------------------------------------------------

LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*(\S+)", re.M)


def links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?ms)^\s*(```|~~~).*?^\s*\1", "", text)  # fenced code
    text = re.sub(r"`[^`\n]*`", "", text)  # inline code
    return LINK.findall(text) + REF_LINK.findall(text)


@pytest.mark.parametrize("doc", LINK_DOCS, ids=rel)
def test_relative_links_resolve(doc):
    broken = []
    for target in links(doc):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            continue  # http:, mailto:
        path, _, anchor = target.split("?", 1)[0].partition("#")
        page = doc.parent / path if path else doc
        if not page.exists():
            broken.append(target)
        elif anchor and page.suffix == ".md" and anchor not in anchors(page):
            broken.append(target)
    assert not broken, f"{rel(doc)}: links to missing files or headings: {broken}"


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation
    dropped, spaces to hyphens, a repeated one suffixed -1, -2, ..."""
    text = re.sub(r"(?ms)^\s*(```|~~~).*?^\s*\1", "", page.read_text(encoding="utf-8"))
    out: set[str] = set()
    for title in re.findall(r"(?m)^#{1,6}\s+(.*?)\s*#*\s*$", text):
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        n, name = 0, slug
        while name in out:
            n += 1
            name = f"{slug}-{n}"
        out.add(name)
    return out


def test_anchors_follow_github():
    page = ROOT / "docs" / "writing.md"
    assert "styles-and-bias" in anchors(page)


def test_links_are_found():
    found = links(ROOT / "README.md")
    assert "docs/writing.md" in found and "samples/handwriting-hello.svg" in found


# -- wording -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("doc", SHIPPED_DOCS, ids=rel)
def test_shipped_docs_speak_of_the_product(doc):
    hits = [f"{rel(doc)}:{n}: {line.strip()}"
            for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1) if INTERNAL.search(line)]
    assert not hits, "internal work periods or issue numbers in shipped docs:\n" + "\n".join(hits)


# -- the reliability table, versions, CI ---------------------------------------------------------------

def test_the_tests_the_docs_name_exist():
    named = set()
    for doc in COMMAND_DOCS:
        named |= set(re.findall(r"\b(test_\w+\.py)(?:::(\w+))?", doc.read_text(encoding="utf-8")))
    assert len(named) > 40
    missing = []
    for file, func in sorted(named):
        path = ROOT / "tests" / file
        if not path.is_file():
            missing.append(file)
        elif func and not re.search(rf"^\s*def {func}\(", path.read_text(encoding="utf-8"), re.M):
            missing.append(f"{file}::{func}")
    assert not missing, f"tests named in the docs but not found: {missing}"


def test_version_is_the_same_everywhere():
    pyproject = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    changelog = re.search(r"^## \[(\d[^\]]*)\]", (ROOT / "CHANGELOG.md").read_text(encoding="utf-8"), re.M).group(1)
    assert pyproject == genseq.__version__ == changelog
    r = CliRunner().invoke(main, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"genseq, version {genseq.__version__}"


def test_readme_keeps_the_ci_test_command_and_the_quick_start():
    readme = [line for _, line in shell_lines(ROOT / "README.md")]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\npython -m pytest\n" in ci
    assert any(line.endswith("&& python -m pytest") and "pip install torch==2.13.0" in line for line in readme)
    assert any("pip install torch==2.13.0" in line and "&& genseq write " in line for line in readme)


def _all_click_commands(cmd=main, path=("genseq",)):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in cmd.commands.items():
            yield from _all_click_commands(sub, path + (name,))


def test_every_help_page_renders_without_an_empty_range():
    from click.testing import CliRunner
    runner = CliRunner()
    pages = 0
    for path, _ in _all_click_commands():
        r = runner.invoke(main, [*path[1:], "--help"])
        assert r.exit_code == 0, (path, r.output)
        assert "None" not in r.output, f"{' '.join(path)} --help shows 'None': {r.output}"
        pages += 1
    assert pages > 20
