"""The README's links into the manual (docs/) lead somewhere.

`mkdocs build --strict` (in `make test`) checks the links inside docs/; the README is not
part of the MkDocs site, so its links are checked here: every relative link names a file
that exists, and every #anchor a heading of that file (MkDocs' and GitHub's slugs agree
for these headings)."""

import re
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#([^)\s]+))?\)")


def slug(title: str) -> str:
    title = re.sub(r"[^\w\s-]", "", title.strip().lower())
    return re.sub(r"\s+", "-", title)


def anchors(page: Path) -> set[str]:
    found, fenced = set(), False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (heading := re.match(r"#+ (.*)", line)):
            found.add(slug(heading.group(1)))
    return found


def readme_links() -> list[tuple[str, str | None]]:
    text = (ROOT / "README.md").read_text()
    return [
        (target, anchor)
        for target, anchor in LINK.findall(text)
        if not target.startswith(("http://", "https://", "mailto:"))
    ]


def test_the_readme_links_into_the_manual():
    assert any(target.startswith("docs/") for target, _ in readme_links())


@pytest.mark.parametrize(("target", "anchor"), readme_links())
def test_each_readme_link_resolves(target, anchor):
    page = ROOT / target
    assert page.is_file(), f"README links to {target}, which does not exist"
    if anchor:
        assert anchor in anchors(page), f"{target} has no heading for #{anchor}"


def test_every_manual_page_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert pages and all(page in nav for page in pages)
