"""The README is a short front door whose links lead somewhere, and every picture under docs/ is shown by a page.

`mkdocs build --strict` (`make test`) checks the site itself: links and anchors between pages, and that every page
is in the nav. What it cannot see is checked here: the README lies outside the site, and an image no page
references is not a broken link, just a picture nobody can reach.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
MAX_README_LINES = 120  # the issue: "under 120 lines"
PICTURE_FOLDERS = ("screenshots", "results")
PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".svg"}

# [text](target), ![alt](target "title"), <img src="target">, <a href="target">
_MARKDOWN_TARGET = re.compile(r"\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HTML_TARGET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def link_targets(markdown: str) -> list[str]:
    """Local link and image targets of a markdown text, without their #anchors; code blocks are not links."""
    text = _FENCE.sub("", markdown)
    found = _MARKDOWN_TARGET.findall(text) + _HTML_TARGET.findall(text)
    local = [
        t for t in found if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.IGNORECASE) and not t.startswith("#")
    ]
    return [t.split("#", 1)[0] for t in local]


def resolved(page: Path, target: str) -> Path:
    return (page.parent / target).resolve()


def test_link_targets_finds_links_and_pictures_but_not_urls_anchors_or_code() -> None:
    text = (
        '[a](docs/a.md#part) ![b](results/b.jpg "title") <img src="c.png"> [d](https://x.org/d.md) [e](#top)\n'
        "```sh\nx = y[0](z)\n```\n"
    )
    assert link_targets(text) == ["docs/a.md", "results/b.jpg", "c.png"]


def test_readme_is_a_short_front_door() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < MAX_README_LINES, (
        f"README.md has {len(lines)} lines; keep it under {MAX_README_LINES} and put the rest in a page under docs/"
    )


def test_readme_links_lead_to_files_that_exist() -> None:
    targets = link_targets(README.read_text(encoding="utf-8"))
    assert any(t.startswith("docs/") and t.endswith(".md") for t in targets), "the README links into the site"
    missing = [t for t in targets if not resolved(README, t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_every_picture_under_docs_is_shown_by_a_page() -> None:
    referenced = {
        resolved(page, target)
        for page in DOCS.rglob("*.md")
        for target in link_targets(page.read_text("utf-8"))
    }
    pictures = [
        path
        for folder in PICTURE_FOLDERS
        for path in sorted((DOCS / folder).rglob("*"))
        if path.suffix.lower() in PICTURE_SUFFIXES
    ]
    assert pictures, "docs/screenshots and docs/results hold the pictures"
    unshown = [str(p.relative_to(ROOT)) for p in pictures if p.resolve() not in referenced]
    assert not unshown, f"no page under docs/ shows these pictures: {unshown}"
