"""Markup → plain text: the cleaners the corpus build applies to every file it reads.

One function per kind of source file (`Source.cleaner` names it, `CLEANERS` maps the name to
it): `clean_man` (groff/man(7)), `clean_html`, `clean_rst` (reStructuredText) and
`clean_code` (source code, kept verbatim; a minified/generated file becomes ""). The markup
cleaners keep the text that markup wraps and return it tidied: no trailing spaces, blank
lines at most one in a row, one final newline. Pure functions of their input (stdlib only);
a change that alters their output must bump `zett.data.build.CORPUS_VERSION`, so prepared
corpora are rebuilt.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

MAX_LINE_CHARS = 2000  # code files with longer lines are minified/generated: skipped

# -------------------------------------------------------------------------------- groff

_GROFF_NAMED = {
    "em": "—",
    "en": "–",
    "bu": "•",
    "aq": "'",
    "dq": '"',
    "lq": "“",
    "rq": "”",
    "oq": "‘",
    "cq": "’",
    "co": "©",
    "rg": "®",
    "tm": "™",
    "mi": "-",
    "hy": "-",
    "ti": "~",
    "ha": "^",
    "rs": "\\",
    "sl": "/",
    "<=": "≤",
    ">=": "≥",
    "mu": "×",
    "de": "°",
    "->": "→",
    "<-": "←",
}
_GROFF_ESCAPE = re.compile(
    r"""\\(?:
        f(?:\[[^\]]*\]|\(..|.)        # font change
      | [hvwoxlLDbZ]'[^']*'            # motions / drawing with a quoted argument
      | s[+-]?(?:\d+|\[[^\]]*\]|\(..)  # size change
      | [*n](?:\[[^\]]*\]|\(..|.)      # string / register interpolation
      | \((?P<two>..)                  # named glyph \(xx
      | \[(?P<br>[^\]]*)\]             # named glyph \[xxx]
      | (?P<one>.)                     # any other one-character escape
    )""",
    re.VERBOSE,
)
_GROFF_ONE = {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ", "'": "'", "`": "`"}
_TEXT_MACROS = {"B", "I", "SM", "SB", "SH", "SS", "IP", "Nm", "Nd", "Sh", "Ss", "Pa"}
_ALT_MACROS = {"BR", "RB", "IR", "RI", "BI", "IB"}
_BREAK_MACROS = {"TP", "PP", "P", "LP", "br", "sp", "nf", "fi", "Pp", "RS", "RE", "TS", "TE"}


def _groff_inline(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group("two") or m.group("br")
        if name is not None:
            return _GROFF_NAMED.get(name, "")
        one = m.group("one")
        return _GROFF_ONE.get(one, "") if one is not None else ""

    return _GROFF_ESCAPE.sub(sub, text)


def _macro_args(rest: str) -> list[str]:
    return [a.strip('"') for a in re.findall(r'"[^"]*"|\S+', rest)]


def clean_man(src: str) -> str:
    """Groff/man(7) source → plain text: macros dropped, their text arguments kept,
    inline escapes resolved to the characters they stand for (or dropped)."""
    out: list[str] = []
    in_def = False
    for raw in src.splitlines():
        if in_def:
            in_def = raw.strip() != ".."
            continue
        line = raw.split('\\"', 1)[0] if '\\"' in raw else raw
        if line.startswith((".", "'")):
            m = re.match(r"[.']\s*(\S+)\s*(.*)", line)
            if not m:
                continue
            macro, rest = m.group(1), m.group(2)
            if macro in ("de", "de1", "am", "ig"):
                in_def = True
                continue
            if macro in _TEXT_MACROS:
                args = _macro_args(rest)
                if macro == "IP":
                    args = args[:1]
                text = " ".join(args)
                if macro in ("SH", "SS", "Sh", "Ss"):
                    out.extend(["", _groff_inline(text), ""])
                elif text:
                    out.append(_groff_inline(text))
            elif macro in _ALT_MACROS:
                out.append(_groff_inline("".join(_macro_args(rest))))
            elif macro in _BREAK_MACROS:
                out.append("")
            continue
        line = line.replace("T{", "").replace("T}", "")
        out.append(_groff_inline(line))
    return _tidy("\n".join(out))


# --------------------------------------------------------------------------------- HTML

_SKIP_TAGS = {"script", "style", "noscript", "head", "header", "aside", "nav", "footer", "svg"}
_BLOCK_TAGS = {
    "p", "div", "br", "li", "tr", "td", "th", "pre", "table", "dt", "dd", "section", "h1",
    "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "blockquote", "title", "article",
}  # fmt: skip


class _TextExtractor(HTMLParser):
    """Collects visible text; block elements become line breaks; navigation is skipped."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.pre_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth += 1
        elif tag == "pre":
            self.pre_depth += 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self.skip_depth = max(0, self.skip_depth - 1)
        elif tag == "pre":
            self.pre_depth = max(0, self.pre_depth - 1)
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        if self.pre_depth:
            self.parts.append(data)
        else:
            self.parts.append(re.sub(r"\s+", " ", data))


def clean_html(src: str) -> str:
    """HTML → visible text (scripts, styles, headers, navigation dropped; entities decoded)."""
    parser = _TextExtractor()
    parser.feed(src)
    parser.close()
    return _tidy("".join(parser.parts))


# --------------------------------------------------------------------- reStructuredText

_RST_UNDERLINE = re.compile(r"^\s*([=\-~^\"'`#*+_])\1{2,}\s*$")
_RST_DIRECTIVE = re.compile(r"^\s*\.\.(\s+[\w:|-]+::.*|\s+_[^:]+:.*|\s*$|\s+\[.*)$")
_RST_ROLE = re.compile(r":[\w:+-]+:`([^`<]*?)\s*(?:<[^>]*>)?`")
_RST_INLINE = re.compile(r"``([^`]+)``|`([^`<]+?)\s*(?:<[^>]*>)?`_{0,2}|\*\*([^*]+)\*\*")


def clean_rst(src: str) -> str:
    """reStructuredText → plain text: heading underlines, directives, roles and link
    targets dropped; the text they wrap kept."""
    out = []
    for line in src.splitlines():
        if _RST_UNDERLINE.match(line) or _RST_DIRECTIVE.match(line):
            continue
        line = _RST_ROLE.sub(r"\1", line)
        line = _RST_INLINE.sub(lambda m: next(g for g in m.groups() if g is not None), line)
        out.append(line)
    return _tidy("\n".join(out))


# ------------------------------------------------------------------------- code, common


def clean_code(src: str) -> str:
    """Source code is kept verbatim (newlines normalized, trailing spaces dropped);
    minified/generated files (any line over MAX_LINE_CHARS) become empty."""
    lines = [ln.rstrip() for ln in src.replace("\r\n", "\n").split("\n")]
    if any(len(ln) > MAX_LINE_CHARS for ln in lines):
        return ""
    return "\n".join(lines).strip("\n") + "\n"


def _tidy(text: str) -> str:
    """Trailing spaces off, runs of blank lines to one, no leading/trailing blank lines."""
    text = re.sub(r"[ \t]+\n", "\n", text.replace("\r\n", "\n"))
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip() + "\n"


CLEANERS = {"man": clean_man, "html": clean_html, "rst": clean_rst, "code": clean_code}
