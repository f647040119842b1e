#!/usr/bin/env python3
"""Checks the relative links of README.md and docs/**/*.md.

Every link that is not a URL must name a file or folder of the repository
(never one outside it), and a `#fragment` must name a heading of the target
page, as GitHub makes its anchors. Links inside code (fenced blocks, `inline
code`) are not links. Exit code 0 when every link resolves, 1 otherwise.

Usage: tests/docs/check_links.py [FILE.md ...]   (default: README.md, docs/**/*.md)
"""
import pathlib
import re
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
LINK = re.compile(r"(?<!\\)!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")


def prose_lines(text: str):
    """(line number, line) outside fenced code blocks, inline code removed."""
    fence = None
    for n, line in enumerate(text.split("\n"), 1):
        m = re.match(r"^\s*(```+|~~~+)", line)
        if m:
            if fence is None:
                fence = m.group(1)
            elif m.group(1).startswith(fence):
                fence = None
            continue
        if fence is None:
            yield n, re.sub(r"`[^`]*`", "", line)


def anchors(path: pathlib.Path) -> set:
    """GitHub's anchors for the headings of a Markdown file."""
    seen = {}
    result = set()
    fence = None
    for line in path.read_text().split("\n"):
        m = re.match(r"^\s*(```+|~~~+)", line)
        if m:
            fence = None if fence and m.group(1).startswith(fence) else (fence or m.group(1))
            continue
        if fence:
            continue
        h = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not h:
            continue
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", h.group(1))  # a link keeps its text
        slug = re.sub(r"[^\w\- ]", "", text.lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        result.add(slug if n == 0 else f"{slug}-{n}")
    for m in re.finditer(r"<a\s+(?:name|id)=\"([^\"]+)\"", path.read_text()):
        result.add(m.group(1))
    return result


def check(page: pathlib.Path) -> list:
    errors = []
    for n, line in prose_lines(page.read_text()):
        for m in LINK.finditer(line):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
                continue  # a URL (https:, mailto:)
            where = f"{page.relative_to(REPO)}:{n}: {target}"
            path_part, _, fragment = target.partition("#")
            dest = (page.parent / path_part).resolve() if path_part else page
            try:
                dest.relative_to(REPO)
            except ValueError:
                errors.append(f"{where}: outside the repository")
                continue
            if not dest.exists():
                errors.append(f"{where}: no such file or folder")
                continue
            if fragment:
                if dest.is_dir() or dest.suffix != ".md":
                    errors.append(f"{where}: a fragment on something that is not a Markdown page")
                elif fragment not in anchors(dest):
                    errors.append(f"{where}: no heading '#{fragment}' in {dest.relative_to(REPO)}")
    return errors


def main() -> int:
    pages = [pathlib.Path(p).resolve() for p in sys.argv[1:]] or \
        [REPO / "README.md"] + sorted((REPO / "docs").rglob("*.md"))
    errors = [e for page in pages for e in check(page)]
    for e in errors:
        print(e)
    links = sum(len(LINK.findall(line)) for page in pages for _, line in prose_lines(page.read_text()))
    print(f"{len(pages)} pages, {links} links, {len(errors)} broken")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
