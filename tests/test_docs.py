"""The README and the docs pages: a README that fits on a screen, and links and names that cannot rot.

Reads only files of this checkout (found from this file's location); no network, no docs generator.
Besides links, the pages' code (spans and fenced blocks) is read for names of the repository: a
path whose first part is a top-level entry of the checkout (``common/wire/packet.py``,
``tests/...``) must exist, unless .gitignore says it is an output (``demo-out/``,
``deploy/wheels/``); ``path.py::name`` must be defined at the top of that file. Every dotted
``gensc.x.y`` name anywhere on a page must be a module (``importlib.util.find_spec``) or an
attribute of one (``gensc.x.y.name``, ``gensc.x.y::name``); the protobuf package (``gensc.v1``,
read from proto/*.proto) is not Python and is left out.

Anchors are checked the way GitHub makes them from headings (github-slugger): the heading's text,
lower-cased, every character that is not a letter, digit, ``_``, ``-`` or space removed, each space
turned into ``-``; a repeated heading gets ``-1``, ``-2``, ...
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
INDEX = DOCS / "index.md"
MAX_README_LINES = 300
QUICK_START = ["make demo", "make test"]
MACHINE_PATHS = ("/tmp/", "/root/", "/work/", "/home/")

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_LINK = re.compile(r"\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^\s)>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_DOTTED = re.compile(r"(?<![\w.])gensc(?:\.[A-Za-z_]\w*)+(?:::[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)?")
_PROTO_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.M)
_PLACEHOLDER = ("...", "\u2026", "<", ">", "{", "}", "$", "~")  # tests/..., <name>, $VAR: not one path
_TOKEN_EDGES = "\"'`()[],;:"


def markdown_files() -> list[Path]:
    """Every page whose links are checked: README.md, docs/*.md and channel/README.md."""
    return [README, *sorted(DOCS.glob("*.md")), ROOT / "channel" / "README.md"]


def split_fences(text: str) -> tuple[list[tuple[int, str]], list[list[tuple[int, str]]]]:
    """``text`` as (line number, line) outside fenced code blocks, and each fenced block's lines."""
    prose, blocks, fence = [], [], None
    for number, line in enumerate(text.splitlines(), 1):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            blocks.append([])
        elif fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
            else:
                blocks[-1].append((number, line))
        else:
            prose.append((number, line))
    return prose, blocks


def slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (links reduced to their text, markup dropped)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def headings(text: str) -> list[str]:
    """The text of every ATX heading (``# ...``) outside fenced code blocks."""
    return [m.group(2) for _, line in split_fences(text)[0] if (m := _HEADING.match(line))]


def anchors(text: str) -> set[str]:
    """Every anchor GitHub makes for the headings of ``text`` (repeats get -1, -2, ...)."""
    found, counts = set(), {}
    for heading in headings(text):
        base = slug(heading)
        repeat = counts.get(base, 0)
        counts[base] = repeat + 1
        found.add(base if repeat == 0 else f"{base}-{repeat}")
    return found


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of every inline link and image outside code (blocks and spans)."""
    return [
        (number, m.group(1))
        for number, line in split_fences(text)[0]
        for m in _LINK.finditer(_CODE_SPAN.sub("", line))
    ]


def where(page: Path, number: int) -> str:
    """``page:line``, the page relative to the checkout where it lies in it."""
    return f"{page.relative_to(ROOT) if page.is_relative_to(ROOT) else page}:{number}"


def broken_links(page: Path) -> list[str]:
    """What is wrong with each relative link of ``page``: a missing file, or a missing anchor."""
    problems = []
    for number, target in links(page.read_text(encoding="utf-8")):
        if not target or _SCHEME.match(target) or target.startswith("//"):
            continue
        path_part, _, anchor = target.partition("#")
        if path_part.startswith("/"):  # GitHub reads a leading / as the repository's root
            dest = (ROOT / path_part.lstrip("/")).resolve()
        else:
            dest = (page.parent / path_part).resolve() if path_part else page
        at = where(page, number)
        if not dest.exists():
            problems.append(f"{at}: {target!r} points to a file that does not exist")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{at}: {target!r} names no heading of {dest.name} (no anchor #{anchor})")
    return problems


def code(text: str) -> list[tuple[int, str]]:
    """(line number, text) of every code span outside fenced blocks, and every fenced line."""
    prose, blocks = split_fences(text)
    spans = [(number, m.group(0).strip("`")) for number, line in prose for m in _CODE_SPAN.finditer(line)]
    return spans + [numbered for block in blocks for numbered in block]


def gitignore_patterns() -> list[str]:
    """The checkout's .gitignore patterns (comments, blanks and negations left out)."""
    ignore = ROOT / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith(("#", "!"))]


def ignored(path: str) -> bool:
    """Whether .gitignore marks ``path`` (relative to the checkout) or a folder above it as ignored."""
    parts = path.strip("/").split("/")
    for pattern in gitignore_patterns():
        bare = pattern.strip("/")
        if pattern.startswith("/") or "/" in bare:  # anchored at the checkout's root
            if fnmatch("/".join(parts[: bare.count("/") + 1]), bare):
                return True
        elif any(fnmatch(part, bare) for part in parts):
            return True
    return False


def top_level() -> set[str]:
    """The checkout's top-level files and folders that a page may name a path under."""
    return {p.name for p in ROOT.iterdir() if p.name != ".git" and not ignored(p.name)}


def repository_paths(text: str) -> list[tuple[int, str, str]]:
    """(line number, path, name or "") for each repository path in ``text``'s code.

    A word of the code is a repository path when it has a ``/`` and its first part is a top-level
    entry of the checkout; ``--flag=path`` counts its path; ``path.py::name`` names ``name`` in it.
    Placeholders (``tests/...``, ``<dir>``, ``$VAR``) and outputs .gitignore lists are left out.
    """
    roots, found = top_level(), []
    for number, line in code(text):
        for word in line.split():
            word = word.strip(_TOKEN_EDGES).rpartition("=")[2].rstrip(".")
            path, _, name = word.partition("::")
            if "/" not in path or any(p in path for p in _PLACEHOLDER) or ignored(path):
                continue
            if path.split("/", 1)[0] in roots:
                found.append((number, path, name))
    return found


def defined_names(source: Path) -> set[str]:
    """Names a Python file defines at its top level (functions, classes, assignments, imports)."""
    names = set()
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def stale_paths(page: Path) -> list[str]:
    """Each repository path ``page`` names that the checkout lacks, or a ``::name`` its file lacks."""
    problems = []
    for number, path, name in repository_paths(page.read_text(encoding="utf-8")):
        matches = sorted(ROOT.glob(path.rstrip("/"))) if "*" in path else [ROOT / path]
        if not any(m.exists() for m in matches):
            problems.append(f"{where(page, number)}: `{path}` does not exist in the repository")
        elif name and (matches[0].suffix != ".py" or name.split(".")[0] not in defined_names(matches[0])):
            problems.append(f"{where(page, number)}: `{path}` defines no `{name}`")
    return problems


def proto_packages() -> set[str]:
    """The protobuf packages of proto/*.proto (``gensc.v1``): names on the wire, not Python modules."""
    texts = [f.read_text(encoding="utf-8") for f in (ROOT / "proto").glob("*.proto")]
    return {m.group(1) for text in texts for m in _PROTO_PACKAGE.finditer(text)}


def dotted_names(text: str) -> list[tuple[int, str]]:
    """(line number, name) of every ``gensc.x.y`` / ``gensc.x.y::name`` in ``text``, protobuf's aside."""
    protos = proto_packages()
    return [
        (number, m.group(0))
        for number, line in enumerate(text.splitlines(), 1)
        for m in _DOTTED.finditer(line)
        if not any(m.group(0) == p or m.group(0).startswith(p + ".") for p in protos)
    ]


def unresolved(name: str) -> str | None:
    """Why ``name`` (``gensc.x.y``, ``gensc.x.y.attr`` or ``gensc.x.y::attr``) names nothing, or None.

    The longest dotted prefix that is a module is the module; what follows must be attributes.
    """
    module_part, _, attr_part = name.partition("::")
    parts = module_part.split(".")
    for end in range(len(parts), 1, -1):
        module = ".".join(parts[:end])
        try:
            if importlib.util.find_spec(module) is not None:
                break
        except ModuleNotFoundError:  # a parent package is missing
            continue
    else:
        return f"no module {module_part}"
    attributes = parts[end:] + (attr_part.split(".") if attr_part else [])
    if attr_part and end < len(parts):
        return f"no module {module_part}"
    obj = importlib.import_module(module)
    for i, attribute in enumerate(attributes):
        if not hasattr(obj, attribute):
            why = f"{'.'.join([module, *attributes[:i]])} has no {attribute!r}"
            return f"no module {module_part}, and {why}" if i == 0 and not attr_part else why
        obj = getattr(obj, attribute)
    return None


def stale_modules(page: Path) -> list[str]:
    """Each dotted gensc name on ``page`` that is neither an importable module nor an attribute of one."""
    return [
        f"{where(page, number)}: `{name}`: {why}"
        for number, name in dotted_names(page.read_text(encoding="utf-8"))
        if (why := unresolved(name))
    ]


# ---------------------------------------------------------------- the checker itself


def test_slug_follows_github():
    heading = "Graceful degradation: `gensc bench degradation`"
    assert slug(heading) == "graceful-degradation-gensc-bench-degradation"
    assert slug("report.json") == "reportjson"
    assert slug("The `mini` profile: small trained models") == "the-mini-profile-small-trained-models"
    assert slug("Retries, resume and limits") == "retries-resume-and-limits"
    assert slug("A — B") == "a--b"
    assert anchors("# Same\n## Same\n### Same\n") == {"same", "same-1", "same-2"}


def test_checker_finds_broken_links(tmp_path):
    (tmp_path / "other.md").write_text("# Real heading\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n"
        "[ok](other.md) [ok](other.md#real-heading) [ok](#page) [web](https://example.org/x)\n"
        "[gone](missing.md) [bad anchor](other.md#no-such) [bad local](#nowhere) [root](/other.md)\n"
        "`[not a link](in-code.md)`\n"
        "```\n[not a link](in-fence.md)\n```\n",
        encoding="utf-8",
    )
    problems = broken_links(page)
    assert len(problems) == 4, problems
    assert any("missing.md" in p for p in problems)
    assert any("#no-such" in p for p in problems)
    assert any("#nowhere" in p for p in problems)
    assert any("'/other.md'" in p for p in problems)  # the repository's root, not this folder


def test_checker_finds_stale_paths_and_names(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n"
        "`common/wire/packet.py` `models/weights/mini` `tests/golden/` `--out=benchmarks/results/*.json`\n"
        "`common/net/rpc.py::create_channel` `gensc.common.wire.packet` `gensc.client.send.send`\n"
        "`gensc.common.config::Config` `gensc.v1.Sender` `demo-out/report.json` `deploy/wheels/cpu/`\n"
        "`tests/...` `OUT/train.json` `$GENSC_CACHE/quantized/` and gensc.channel.warmup() in prose\n"
        "stale: `common/packet.py` `tests/app/test_suites.py` `common/net/rpc.py::no_such`\n"
        "`gensc.common.mini` `gensc.client.send.no_such` `gensc.common.config::NoSuch`\n"
        "also in prose, gensc.channel.no_such.\n"
        "```\ngensc train-mini --out common/weights/mini\n```\n",
        encoding="utf-8",
    )
    paths = stale_paths(page)
    assert len(paths) == 4, paths
    for path in ("`common/packet.py`", "`tests/app/test_suites.py`", "`common/weights/mini`"):
        assert any(path in p and "does not exist" in p for p in paths), (path, paths)
    assert any("defines no `no_such`" in p for p in paths)
    assert any(p.startswith(f"{page}:10:") for p in paths)  # the fenced line, numbered as on the page
    names = stale_modules(page)
    assert len(names) == 4, names
    for name in ("gensc.common.mini", "gensc.client.send.no_such", "gensc.common.config::NoSuch"):
        assert any(f"`{name}`" in n for n in names), (name, names)
    assert any("gensc.channel has no 'no_such'" in n for n in names)


def test_gitignore_marks_outputs():
    assert ignored("demo-out/report.json") and ignored("deploy/wheels/cpu/") and ignored(".venv/bin/gensc")
    assert ignored("gensc.egg-info/PKG-INFO") and ignored("results/x.json")
    assert not ignored("deploy/compose/wheels.sh") and not ignored("benchmarks/results/scale.json")
    assert {"common", "models", "tests", "docs", "setup.py", ".ci"} <= top_level()
    assert ".venv" not in top_level()


# ---------------------------------------------------------------- the pages


def test_readme_fits_on_a_screen():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md is {len(lines)} lines, over {MAX_README_LINES}"


def test_quick_start_is_the_first_code_block():
    first = split_fences(README.read_text(encoding="utf-8"))[1][0]
    commands = [line.split("#", 1)[0].strip() for _, line in first]
    assert [c for c in commands if c] == QUICK_START
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for command in QUICK_START:
        target = command.split()[1]
        assert re.search(rf"^{target}:", makefile, re.M), f"the Makefile has no target {target!r}"


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    assert page.exists(), f"{page.relative_to(ROOT)} is missing"
    problems = broken_links(page)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_every_docs_page_is_linked_from_the_index():
    linked = {(DOCS / target.partition("#")[0]).resolve() for _, target in links(INDEX.read_text("utf-8"))}
    pages = {p.resolve() for p in DOCS.glob("*.md")} - {INDEX.resolve()}
    missing = sorted(p.name for p in pages - linked)
    assert not missing, f"docs/index.md does not link {missing}"


def test_readme_links_the_docs_index():
    targets = {target.partition("#")[0] for _, target in links(README.read_text(encoding="utf-8"))}
    assert "docs/index.md" in targets


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_machine_paths(page):
    found = [
        f"{page.relative_to(ROOT)}:{number}: {path}"
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        for path in MACHINE_PATHS
        if path in line
    ]
    assert not found, "paths of one machine in the docs:\n" + "\n".join(found)


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_named_paths_exist(page):
    problems = stale_paths(page)
    assert not problems, "paths the repository does not have:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_named_modules_import(page):
    problems = stale_modules(page)
    assert not problems, "gensc names that are no module or attribute:\n" + "\n".join(problems)
