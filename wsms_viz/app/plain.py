"""Text from files and uploads, made safe to put into the app's markdown.

Every string the app did not write itself (a checkpoint's folder name or card, a class
name, a label of ``examples.json``, a dataset's folder and file names, an upload's name,
an error message quoting any of these) goes through :func:`md` before it reaches a
caption, notice, heading, table or any other element Streamlit renders as markdown, and
through :func:`html` before it reaches the one element that is HTML. So a name such as
``![x](http://host/track.png)`` is shown as those characters and the browser fetches
nothing: no image, link, HTML tag, entity, emphasis, table cell, heading, list, code,
math, Streamlit directive or link (not even a bare URL's) can be made from it.

Only the characters that make markdown are escaped (a backslash before ASCII punctuation
is always that character in CommonMark), so an ordinary name (``wsms_resnet20``,
``chelsea.png``, ``bird #1``) reads the same in the markdown source as on the page.

Example:
    >>> md("![x](http://host/t.png)")
    '!\\\\[x\\\\](http\\\\://\\u2060host/t.png)'
    >>> md("wsms_resnet20"), md("_a_"), md("# 1. title")
    ('wsms_resnet20', '\\\\_a\\\\_', '\\\\# 1. title')
    >>> html('<img src="x">')
    '&lt;img src=&quot;x&quot;&gt;'
"""

from __future__ import annotations

import html as _html
import re

MAX_CHARS = 500  # no file's name or label is longer; a longer one is cut, not shown whole

# Anywhere in a line: emphasis, code, links and images, autolinks and HTML, entities,
# strikethrough, math, table cells, hard breaks, Streamlit's ``:colour[...]`` and
# ``:material/icon:`` directives.
_ALWAYS = re.compile(r"([\\`*\[\]<>&~$|{}])|:(?=\S)")
# "_" is emphasis only where it is not between two letters or digits (CommonMark).
_UNDERSCORE = re.compile(r"(?<![^\W_])_|_(?![^\W_])")
# At the start of the text: headings, quotes, lists, setext lines, numbered lists.
_LEADING = re.compile(r"^([#>+\-=])|^(\d+)([.)])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
# GFM turns bare URLs, "www." names and e-mail addresses into links after parsing, escapes
# or not; an invisible word joiner (U+2060) after "://", "www" and "@" keeps them text.
_AUTOLINK = re.compile(r"(?i)(://|\bwww(?=\.)|@)")
WORD_JOINER = "\u2060"


def _clean(value: object) -> str:
    text = _CONTROL.sub(" ", str(value)).strip()  # a line break would start a new block
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + "..."


def md(value: object) -> str:
    """``str(value)`` on one line, escaped so that Streamlit's markdown shows it as plain text."""
    text = _AUTOLINK.sub(lambda m: m.group(0) + WORD_JOINER, _clean(value))
    text = _ALWAYS.sub(lambda m: "\\" + m.group(0), text)
    text = _UNDERSCORE.sub(r"\\_", text)
    return _LEADING.sub(lambda m: "\\" + m.group(1) if m.group(1) else m.group(2) + "\\" + m.group(3), text)


# Markdown's own characters as numeric entities: inside an HTML block markdown is not
# parsed, but a line that stops being one (a renderer's rules differ) must not turn into
# a link, an image or emphasis either (an underscore inside a word, as in model names, is
# never emphasis). The browser shows the same characters.
_MD_ENTITIES = str.maketrans({c: f"&#{ord(c)};" for c in "[]()!*`:~|{}$\\"})


def html(value: object) -> str:
    """``str(value)`` on one line, escaped for HTML (for ``unsafe_allow_html`` markdown),
    with markdown's own characters as entities too.

    >>> html("<b>![x](http://y)")
    '&lt;b&gt;&#33;&#91;x&#93;&#40;http&#58;//y&#41;'
    """
    return _html.escape(_clean(value), quote=True).translate(_MD_ENTITIES)


__all__ = ["MAX_CHARS", "WORD_JOINER", "html", "md"]
