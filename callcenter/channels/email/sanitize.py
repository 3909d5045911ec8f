"""Customer HTML made safe to show: an nh3 allow-list, remote images switched off.

The result is meant for a sandboxed iframe; the allow-list is the first line of defence, not the
only one. Remote images keep their address in data-remote-src so the UI can offer to load them.
"""

from __future__ import annotations

import html
import re
from copy import deepcopy

import nh3

_TAGS = (set(nh3.ALLOWED_TAGS) - {"map", "area"}) | {"font", "center", "tfoot"}
_DROP_WITH_CONTENT = {
    "script", "style", "title", "noscript", "template", "iframe", "object", "embed", "svg", "math",
}  # fmt: skip
_ATTRIBUTES = deepcopy(nh3.ALLOWED_ATTRIBUTES)
_ATTRIBUTES["*"] = {"style", "title", "dir", "lang"}
_ATTRIBUTES["a"] = {"href", "hreflang"}
_ATTRIBUTES["font"] = {"color", "face", "size"}
# Our own marker for a switched-off remote image survives a second cleaning (the web view
# cleans again what the email worker stored), so "show images" still works afterwards.
_ATTRIBUTES.setdefault("img", set()).add("data-remote-src")
for _tag in ("table", "td", "th", "tr"):
    _ATTRIBUTES.setdefault(_tag, set()).update({"width", "height", "bgcolor", "valign", "border"})
_ATTRIBUTES["table"].update({"cellpadding", "cellspacing"})

# Layout and typography only: none of these take a url() a browser would fetch.
_STYLE_PROPERTIES = {
    "color", "background-color", "font", "font-family", "font-size", "font-style", "font-weight",
    "text-align", "text-decoration", "text-transform", "line-height", "letter-spacing",
    "white-space", "vertical-align", "direction", "width", "height", "max-width", "min-width",
    "margin", "margin-top", "margin-right", "margin-bottom", "margin-left",
    "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "border", "border-top", "border-right", "border-bottom", "border-left", "border-color",
    "border-width", "border-style", "border-collapse", "border-spacing", "border-radius",
}  # fmt: skip
# Anything that could load or run something, including CSS escapes that would hide it.
_UNSAFE_STYLE = re.compile(r"url|expression|image|import|\\|behavior|binding", re.IGNORECASE)
_INLINE_DATA_IMAGE = re.compile(r"data:image/(png|gif|jpeg|webp);base64,", re.IGNORECASE)
# nh3 serialises every attribute double-quoted with " < > escaped, so this cannot be fooled.
_REMOTE_IMG_SRC = re.compile(r'(<img\b[^>]*?\s)src="(https?:[^"]*)"', re.IGNORECASE)
_BLOCK_END = re.compile(r"<br\s*/?>|</(p|div|tr|li|h[1-6]|blockquote|table)\s*>", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n[ \t\r\f\v]*(?=\n)")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute == "style":
        return None if _UNSAFE_STYLE.search(value) else value
    lowered = value.strip().lower()
    if tag == "img" and attribute == "data-remote-src":
        return value if lowered.startswith(("http:", "https:")) else None
    if tag == "img" and attribute == "src":
        if lowered.startswith(("cid:", "http:", "https:")) or _INLINE_DATA_IMAGE.match(lowered):
            return value
        return None
    if lowered.startswith(("data:", "cid:")):  # data: links can carry whole documents
        return None
    return value


_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags=_DROP_WITH_CONTENT,
    attributes=_ATTRIBUTES,
    attribute_filter=_attribute_filter,
    url_schemes={"http", "https", "mailto", "tel", "cid", "data"},
    url_relative="deny",
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
    filter_style_properties=_STYLE_PROPERTIES,
)
_TEXT_ONLY = nh3.Cleaner(tags=set(), clean_content_tags=_DROP_WITH_CONTENT | {"head"})


def sanitize_html(markup: str) -> tuple[str, bool]:
    """(safe HTML, whether remote images were found and switched off)."""
    cleaned = _CLEANER.clean(markup)
    cleaned, remote = _REMOTE_IMG_SRC.subn(r'\1data-remote-src="\2"', cleaned)
    return cleaned, remote > 0


def html_to_text(markup: str) -> str:
    """Readable plain text of an HTML body, for mails that carry no text/plain part."""
    stripped = _TEXT_ONLY.clean(_BLOCK_END.sub("\n", markup))
    text = html.unescape(stripped).replace("\xa0", " ")
    return _MANY_NEWLINES.sub("\n\n", _BLANK_LINES.sub("\n", text)).strip()
