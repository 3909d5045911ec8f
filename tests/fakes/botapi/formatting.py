"""parse_mode handling: turns HTML / MarkdownV2 / Markdown into plain text plus entities.

Follows tdlib's parsers closely enough that text the real server rejects (an unescaped
customer name in HTML, a stray '.' in MarkdownV2) is rejected here with the same words.
Offsets and lengths are in UTF-16 code units, as in the Bot API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, bad_request

Entity = dict[str, Any]

HTML_TAGS = {
    "a": "text_link",
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "tg-emoji": "custom_emoji",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
MARKDOWN_V2_RESERVED = "_*[]()~`>#+-=|{}.!"
_SPACES = " \t\r\n"
_BOT_COMMAND = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/<>])")


def u16(text: str) -> int:
    """Length in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def parse_error(message: str) -> ApiError:
    return bad_request(f"can't parse entities: {message}")


def byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


@dataclass
class _Builder:
    """Collects output text and entities, tracking the UTF-16 position."""

    parts: list[str] = field(default_factory=list)
    pos: int = 0
    entities: list[Entity] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.pos += u16(text)

    def entity(self, kind: str, start: int, **extra: Any) -> None:
        if self.pos > start:
            self.entities.append(
                {"type": kind, "offset": start, "length": self.pos - start, **extra}
            )

    def text(self) -> str:
        return "".join(self.parts)


def format_text(
    text: str, parse_mode: str | None, entities: list[Entity] | None
) -> tuple[str, list[Entity]]:
    """Text as the recipient sees it, and its entities; raises ApiError like the server.

    A parse_mode wins over explicit entities, as in telegram-bot-api.
    """
    mode = (parse_mode or "").lower()
    if mode in {"", "none"}:
        plain, found = text, list(entities or [])
    else:
        if mode == "html":
            plain, found = parse_html(text)
        elif mode == "markdownv2":
            plain, found = parse_markdown_v2(text)
        elif mode == "markdown":
            plain, found = parse_markdown(text)
        else:
            raise bad_request("unsupported parse_mode")
    return strip_text(plain, found)


def strip_text(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    """Drop leading and trailing whitespace as the server does, keeping entities aligned."""
    stripped = text.strip(_SPACES)
    if not stripped:
        return "", []
    shift = u16(text[: len(text) - len(text.lstrip(_SPACES))])
    end = shift + u16(stripped)
    kept = []
    for entity in entities:
        start = max(entity["offset"], shift)
        stop = min(entity["offset"] + entity["length"], end)
        if stop > start:
            kept.append({**entity, "offset": start - shift, "length": stop - start})
    kept.sort(key=lambda e: (e["offset"], -e["length"]))
    return stripped, kept


def bot_command_entities(text: str) -> list[Entity]:
    """The bot_command entities a Telegram client attaches to `/start payload` and the like."""
    return [
        {"type": "bot_command", "offset": u16(text[: m.start()]), "length": u16(m.group())}
        for m in _BOT_COMMAND.finditer(text)
    ]


# --- HTML -----------------------------------------------------------------------------------


def _decode_html_entity(text: str, i: int) -> tuple[str, int] | None:
    """Decode `&...;` at i; tdlib knows only lt, gt, amp, quot and numeric references."""
    end = text.find(";", i + 1, i + 12)
    if end == -1:
        return None
    name = text[i + 1 : end]
    named = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
    if name in named:
        return named[name], end + 1
    try:
        if name[:2].lower() == "#x":
            code = int(name[2:], 16)
        elif name.startswith("#"):
            code = int(name[1:])
        else:
            return None
        return chr(code), end + 1
    except (ValueError, OverflowError):
        return None


def _unescape_html(value: str) -> str:
    parts, i = [], 0
    while i < len(value):
        decoded = _decode_html_entity(value, i) if value[i] == "&" else None
        if decoded:
            parts.append(decoded[0])
            i = decoded[1]
        else:
            parts.append(value[i])
            i += 1
    return "".join(parts)


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    start: int


def parse_html(text: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    stack: list[_OpenTag] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "&":
            decoded = _decode_html_entity(text, i)
            if decoded:
                out.add(decoded[0])
                i = decoded[1]
            else:
                out.add("&")
                i += 1
            continue
        if char != "<":
            out.add(char)
            i += 1
            continue
        offset = byte_offset(text, i)
        if text.startswith("</", i):
            i = _close_html_tag(text, i + 2, offset, stack, out)
        else:
            i = _open_html_tag(text, i + 1, offset, stack, out)
    if stack:
        raise parse_error(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    return out.text(), out.entities


def _open_html_tag(text: str, i: int, offset: int, stack: list[_OpenTag], out: _Builder) -> int:
    n = len(text)
    j = i
    while j < n and not text[j].isspace() and text[j] != ">":
        j += 1
    if j >= n:
        raise parse_error(f"Unclosed start tag at byte offset {offset}")
    name = text[i:j].lower()
    if name not in HTML_TAGS:
        raise parse_error(f'Unsupported start tag "{name}" at byte offset {offset}')
    attrs: dict[str, str] = {}
    while True:
        while j < n and text[j].isspace():
            j += 1
        if j >= n:
            raise parse_error(f'Unclosed start tag "{name}" at byte offset {offset}')
        if text[j] == ">":
            break
        k = j
        while k < n and not text[k].isspace() and text[k] not in "=>":
            k += 1
        attr = text[j:k].lower()
        while k < n and text[k].isspace():
            k += 1
        if k < n and text[k] != "=":
            if name == "blockquote" and attr == "expandable":
                attrs[attr] = ""
                j = k
                continue
            raise parse_error(
                f'Expected equal sign in declaration of an attribute of the tag "{name}" '
                f"at byte offset {offset}"
            )
        k += 1
        while k < n and text[k].isspace():
            k += 1
        if k >= n:
            raise parse_error(f'Unclosed start tag "{name}" at byte offset {offset}')
        if text[k] in "'\"":
            close = text.find(text[k], k + 1)
            if close == -1:
                raise parse_error(f"Unclosed start tag at byte offset {offset}")
            value = _unescape_html(text[k + 1 : close])
            j = close + 1
        else:
            end = k
            while end < n and not text[end].isspace() and text[end] != ">":
                end += 1
            value, j = text[k:end], end
        attrs[attr] = value
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise parse_error(f'Tag "span" must have class "tg-spoiler" at byte offset {offset}')
    stack.append(_OpenTag(name, attrs, out.pos))
    return j + 1


def _close_html_tag(text: str, i: int, offset: int, stack: list[_OpenTag], out: _Builder) -> int:
    end = text.find(">", i)
    if end == -1:
        raise parse_error(f"Unclosed end tag at byte offset {offset}")
    name = text[i:end].strip().lower()
    if not stack:
        raise parse_error(f"Unexpected end tag at byte offset {offset}")
    tag = stack[-1]
    if name and name != tag.name:
        raise parse_error(
            f"Unmatched end tag at byte offset {offset}, "
            f'expected "</{tag.name}>", found "</{name}>"'
        )
    stack.pop()
    kind = HTML_TAGS[tag.name]
    if kind == "text_link":
        href = tag.attrs.get("href", "")
        if href:
            out.entity(kind, tag.start, url=href)
    elif kind == "custom_emoji":
        out.entity(kind, tag.start, custom_emoji_id=tag.attrs.get("emoji-id", ""))
    elif kind == "blockquote" and "expandable" in tag.attrs:
        out.entity("expandable_blockquote", tag.start)
    elif kind == "code" and stack and stack[-1].name == "pre":
        language = tag.attrs.get("class", "")
        if language.startswith("language-"):
            stack[-1].attrs["language"] = language.removeprefix("language-")
        else:
            out.entity(kind, tag.start)
    elif kind == "pre" and tag.attrs.get("language"):
        out.entity(kind, tag.start, language=tag.attrs["language"])
    else:
        out.entity(kind, tag.start)
    return end + 1


# --- MarkdownV2 ------------------------------------------------------------------------------

_V2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}


@dataclass
class _OpenV2:
    kind: str
    start: int
    byte_offset: int
    begin_index: int
    language: str = ""


def _reserved(char: str) -> ApiError:
    return parse_error(
        f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
    )


def parse_markdown_v2(text: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    stack: list[_OpenV2] = []
    quote_start: int | None = None
    n = len(text)

    def at(k: int) -> str:
        return text[k] if k < n else "\0"

    i = 0
    while i < n:
        char = text[i]
        if char == "\\" and 0 < ord(at(i + 1)) <= 126:
            out.add(text[i + 1])
            i += 2
            continue
        in_code = bool(stack) and stack[-1].kind in {"code", "pre"}
        line_start = i == 0 or text[i - 1] == "\n"
        if char == ">" and line_start and not in_code:
            if quote_start is None:
                quote_start = out.pos
            i += 1
            continue
        if char == "\n" and quote_start is not None and at(i + 1) != ">":
            out.entity("blockquote", quote_start)
            quote_start = None
        reserved = "`" if in_code else MARKDOWN_V2_RESERVED
        if char not in reserved:
            out.add(char)
            i += 1
            continue
        top = stack[-1].kind if stack else None
        closes = {
            "bold": char == "*",
            "italic": char == "_" and at(i + 1) != "_",
            "underline": char == "_" and at(i + 1) == "_",
            "strikethrough": char == "~",
            "spoiler": char == "|" and at(i + 1) == "|",
            "code": char == "`",
            "pre": text.startswith("```", i),
            "text_link": char == "]",
            "custom_emoji": char == "]",
        }.get(top or "", False)
        i = _close_v2(text, i, stack.pop(), out) if closes else _open_v2(text, i, stack, out)
    if quote_start is not None:
        out.entity("blockquote", quote_start)
    if stack:
        raise parse_error(
            f"Can't find end of {_V2_NAMES[stack[-1].kind]} entity at byte offset "
            f"{stack[-1].byte_offset}"
        )
    return out.text(), out.entities


def _open_v2(text: str, i: int, stack: list[_OpenV2], out: _Builder) -> int:
    char = text[i]
    offset = byte_offset(text, i)
    language = ""
    if char == "_" and text.startswith("__", i):
        kind, i = "underline", i + 2
    elif char == "_":
        kind, i = "italic", i + 1
    elif char == "*":
        kind, i = "bold", i + 1
    elif char == "~":
        kind, i = "strikethrough", i + 1
    elif char == "|" and text.startswith("||", i):
        kind, i = "spoiler", i + 2
    elif char == "[":
        kind, i = "text_link", i + 1
    elif char == "!" and text.startswith("![", i):
        kind, i = "custom_emoji", i + 2
    elif text.startswith("```", i):
        kind, i = "pre", i + 3
        end = i
        while end < len(text) and not text[end].isspace() and text[end] != "`":
            end += 1
        if end != i and end < len(text) and text[end] != "`":
            language, i = text[i:end], end
        if text.startswith(("\r\n", "\n\r"), i):
            i += 2
        elif text[i : i + 1] in ("\n", "\r"):
            i += 1
    elif char == "`":
        kind, i = "code", i + 1
    else:
        raise _reserved(char)
    stack.append(_OpenV2(kind, out.pos, offset, len(out.text()), language))
    return i


def _close_v2(text: str, i: int, entity: _OpenV2, out: _Builder) -> int:
    kind = entity.kind
    if kind in {"underline", "spoiler"}:
        return _end(out, entity, i + 2)
    if kind == "pre":
        extra = {"language": entity.language} if entity.language else {}
        out.entity(kind, entity.start, **extra)
        return i + 3
    if kind in {"text_link", "custom_emoji"}:
        if text[i + 1 : i + 2] != "(":
            url = out.text()[entity.begin_index :]
            i += 1
        else:
            i += 2
            url_begin = byte_offset(text, i)
            chars = []
            while i < len(text) and text[i] != ")":
                if text[i] == "\\" and i + 1 < len(text) and 0 < ord(text[i + 1]) <= 126:
                    chars.append(text[i + 1])
                    i += 2
                    continue
                chars.append(text[i])
                i += 1
            if i >= len(text):
                raise parse_error(f"Can't find end of a URL at byte offset {url_begin}")
            url = "".join(chars)
            i += 1
        if kind == "custom_emoji":
            out.entity(kind, entity.start, custom_emoji_id=url.removeprefix("tg://emoji?id="))
        elif url:
            out.entity(kind, entity.start, url=url)
        return i
    return _end(out, entity, i + 1)


def _end(out: _Builder, entity: _OpenV2, next_index: int) -> int:
    out.entity(entity.kind, entity.start)
    return next_index


# --- legacy Markdown -------------------------------------------------------------------------


def parse_markdown(text: str) -> tuple[str, list[Entity]]:
    out = _Builder()
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n and text[i + 1] in "_*`[":
            out.add(text[i + 1])
            i += 2
            continue
        if char not in "_*`[":
            out.add(char)
            i += 1
            continue
        begin = byte_offset(text, i)
        end_char = "]" if char == "[" else char
        is_pre = text.startswith("```", i)
        language = ""
        i += 3 if is_pre else 1
        if is_pre:
            end = i
            while end < n and not text[end].isspace() and text[end] != "`":
                end += 1
            if end != i and end < n and text[end] != "`":
                language, i = text[i:end], end
            if text[i : i + 1] in ("\n", "\r"):
                i += 1
        start = out.pos
        while i < n and (text[i] != end_char or (is_pre and not text.startswith("```", i))):
            out.add(text[i])
            i += 1
        if i >= n:
            raise parse_error(f"Can't find end of the entity starting at byte offset {begin}")
        i += 3 if is_pre else 1
        if char == "[":
            url = ""
            if text[i : i + 1] == "(":
                close = text.find(")", i)
                if close == -1:
                    raise parse_error(
                        f"Can't find end of the entity starting at byte offset {begin}"
                    )
                url, i = text[i + 1 : close], close + 1
            if url:
                out.entity("text_link", start, url=url)
        elif is_pre:
            out.entity("pre", start, **({"language": language} if language else {}))
        else:
            out.entity({"_": "italic", "*": "bold", "`": "code"}[char], start)
    return out.text(), out.entities
