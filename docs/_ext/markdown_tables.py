"""Render a Markdown file (``benchmarks/RESULTS.md``) inside a reStructuredText page.

``.. markdown-include:: ../benchmarks/RESULTS.md`` converts the subset of Markdown that the
benchmark notes use -- ATX headings, pipe tables, fenced code, bullet lists and paragraphs with
``code``, ``**bold**``, ``*italic*`` and ``[links](url)`` -- to reStructuredText and parses it
in place. Anything else is kept as plain (escaped) text, so an unusual line never breaks the
warning-free build. Heading levels are made consecutive below the including page's title.
"""

from __future__ import annotations

import os
import re

from docutils import nodes
from docutils.parsers.rst import Directive

#: Underline characters for Markdown heading depths 1, 2, 3, ... (below the page title).
UNDERLINES = "-~^\"'`"

_FENCE = re.compile(r"^(```|~~~)\s*([\w+-]*)\s*$")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_INLINE = re.compile(
    r"(?P<code>`+)(?P<code_text>.+?)(?P=code)"
    r"|\*\*(?P<bold>[^*]+?)\*\*"
    r"|(?<![\w*])\*(?P<em>[^*\s][^*]*?)\*(?![\w*])"
    r"|\[(?P<link_text>[^\]]+)\]\((?P<url>[^)\s]+)\)"
)


def _escape(text: str) -> str:
    """Plain text with every reStructuredText markup character escaped."""
    return re.sub(r"([\\*`_|<>\[\]])", r"\\\1", text)


def inline(text: str) -> str:
    """Convert Markdown inline markup in ``text`` to reStructuredText.

    Example:
        >>> inline("run `make bench` for **all** rows_")
        'run ``make bench`` for **all** rows\\\\_'
        >>> inline("2x`faster`s")
        '2x\\\\ ``faster``\\\\ s'
    """
    out = []
    pos = 0
    for match in _INLINE.finditer(text):
        before = text[pos : match.start()]
        # reST markup must not touch a word character: separate it with an escaped space.
        out.append(_escape(before) + ("\\ " if before[-1:].isalnum() else ""))
        if match.group("code"):
            literal = match.group("code_text").strip()
            out.append(f":literal:`{_escape(literal)}`" if "`" in literal else f"``{literal}``")
        elif match.group("bold"):
            out.append(f"**{_escape(match.group('bold'))}**")
        elif match.group("em"):
            out.append(f"*{_escape(match.group('em'))}*")
        else:
            label = _escape(match.group("link_text"))
            url = match.group("url")
            out.append(f"`{label} <{url}>`__" if "://" in url else label)
        pos = match.end()
        if text[pos : pos + 1].isalnum():
            out.append("\\ ")
    out.append(_escape(text[pos:]))
    return "".join(out)


def _cells(line: str) -> list[str]:
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", body)]


def _table(rows: list[list[str]]) -> list[str]:
    width = max(len(r) for r in rows)
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in rows:
        row = row + [""] * (width - len(row))
        for k, cell in enumerate(row):
            text = inline(cell.replace("\\|", "|")) or "\\ "
            if re.match(r"([-+]|\d+[.)])(\s|$)", text):  # "-" or "1." would start a list
                text = "\\" + text
            out.append(f"   {'*' if k == 0 else ' '} - {text}")
    out.append("")
    return out


def to_rst(markdown: str) -> list[str]:
    """The reStructuredText lines for ``markdown``.

    Example:
        >>> print("\\n".join(to_rst("# Core\\n\\n| a | b |\\n|---|---|\\n| 1 | `x` |")))
        Core
        ----
        <BLANKLINE>
        .. list-table::
           :header-rows: 1
        <BLANKLINE>
           * - a
             - b
           * - 1
             - ``x``
        <BLANKLINE>
    """
    lines = markdown.splitlines()
    out: list[str] = []
    depths: list[int] = []  # Markdown depths of the open headings
    k = 0
    while k < len(lines):
        line = lines[k]
        fence = _FENCE.match(line)
        heading = _HEADING.match(line)
        if fence:
            end = k + 1
            while end < len(lines) and not lines[end].startswith(fence.group(1)):
                end += 1
            language = fence.group(2) or "text"
            language = {"sh": "console", "bash": "console", "shell": "console"}.get(language,
                                                                                      language)
            body = [("   " + s) if s.strip() else "" for s in lines[k + 1 : end]]
            out += [f".. code-block:: {language}", ""] + (body or ["   "]) + [""]
            k = end + 1
        elif heading:
            depth = len(heading.group(1))
            while depths and depths[-1] >= depth:
                depths.pop()
            depths.append(depth)
            title = inline(heading.group(2)) or "\\ "
            char = UNDERLINES[min(len(depths), len(UNDERLINES)) - 1]
            out += [title, char * max(len(title), 4), ""]
            k += 1
        elif "|" in line and k + 1 < len(lines) and _TABLE_RULE.match(lines[k + 1]):
            rows = [_cells(line)]
            k += 2
            while k < len(lines) and lines[k].strip().startswith("|"):
                rows.append(_cells(lines[k]))
                k += 1
            out += _table(rows)
        elif _BULLET.match(line):
            while k < len(lines) and lines[k].strip():
                bullet = _BULLET.match(lines[k])
                if bullet:
                    out.append(f"- {inline(bullet.group(2))}")
                else:
                    out.append(f"  {inline(lines[k].strip())}")
                k += 1
            out.append("")
        elif line.strip():
            paragraph = []
            while (k < len(lines) and lines[k].strip() and not _FENCE.match(lines[k])
                   and not _HEADING.match(lines[k]) and not _BULLET.match(lines[k])
                   and not (k + 1 < len(lines) and _TABLE_RULE.match(lines[k + 1]))):
                paragraph.append(inline(lines[k].strip()))
                k += 1
            out += paragraph + [""]
        else:
            k += 1
    return out


class MarkdownInclude(Directive):
    """``.. markdown-include:: path`` (relative to the including file)."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        source_dir = os.path.dirname(env.doc2path(env.docname))
        path = os.path.normpath(os.path.join(source_dir, self.arguments[0]))
        env.note_dependency(path)
        if not os.path.isfile(path):
            return [nodes.paragraph(text=f"({self.arguments[0]} has not been written yet.)")]
        with open(path, encoding="utf-8") as fh:
            rst = to_rst(fh.read())
        # Like docutils' own ``include``: the lines join the including document, so the
        # headings nest under the page's current section.
        self.state_machine.insert_input(rst, path)
        return []


def setup(app):
    """Register the directive."""
    app.add_directive("markdown-include", MarkdownInclude)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
