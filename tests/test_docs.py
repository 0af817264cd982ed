"""The README and the docs pages: a README that fits on a screen, and links that cannot rot.

Reads only files of this checkout (found from this file's location); no network, no docs generator.
Anchors are checked the way GitHub makes them from headings (github-slugger): the heading's text,
lower-cased, every character that is not a letter, digit, ``_``, ``-`` or space removed, each space
turned into ``-``; a repeated heading gets ``-1``, ``-2``, ...
"""

from __future__ import annotations

import re
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


def markdown_files() -> list[Path]:
    """Every page whose links are checked: README.md, docs/*.md and channel/README.md."""
    return [README, *sorted(DOCS.glob("*.md")), ROOT / "channel" / "README.md"]


def split_fences(text: str) -> tuple[list[tuple[int, str]], list[list[str]]]:
    """``text`` as (line number, line) outside fenced code blocks, and the fenced blocks' lines."""
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
                blocks[-1].append(line)
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
        where = f"{page.relative_to(ROOT) if page.is_relative_to(ROOT) else page}:{number}"
        if not dest.exists():
            problems.append(f"{where}: {target!r} points to a file that does not exist")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{where}: {target!r} names no heading of {dest.name} (no anchor #{anchor})")
    return problems


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


# ---------------------------------------------------------------- the pages


def test_readme_fits_on_a_screen():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md is {len(lines)} lines, over {MAX_README_LINES}"


def test_quick_start_is_the_first_code_block():
    first = split_fences(README.read_text(encoding="utf-8"))[1][0]
    commands = [line.split("#", 1)[0].strip() for line in first]
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
