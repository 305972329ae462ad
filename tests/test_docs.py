"""The documentation's links: every relative link in README.md and docs/ names a file that
exists, and an anchor names a heading of that file (GitHub's slugs), so moving a section
cannot leave a reader at a dead link."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    out, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("#"):
            out.add(_slug(line.lstrip("#")))
    return out


def _links(page: Path) -> list[str]:
    text, fenced, found = page.read_text(), False, []
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced:
            found += _LINK.findall(line)
    return [t for t in found if not re.match(r"[a-z][a-z0-9+.-]*:", t)]  # http:, mailto: ...


def test_every_relative_link_resolves():
    broken = []
    for page in PAGES:
        for target in _links(page):
            path, _, anchor = target.partition("#")
            where = (page.parent / path).resolve() if path else page
            if not where.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and where.suffix == ".md" and anchor not in _anchors(where):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_readme_links_every_page_of_the_docs():
    readme = set(_links(ROOT / "README.md"))
    missing = [p.name for p in PAGES[1:] if f"docs/{p.name}" not in readme]
    assert not missing, missing


def test_the_link_check_can_fail(tmp_path):
    """The checker itself finds a dead file and a dead anchor."""
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [dead](#nowhere) [gone](missing.md)\n")
    assert _links(page) == ["#title", "#nowhere", "missing.md"]
    assert "title" in _anchors(page) and "nowhere" not in _anchors(page)
    assert not (tmp_path / "missing.md").exists()
