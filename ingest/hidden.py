"""Hidden HTML text: what a reader never sees must not reach the index (or a model's context).

Pages and HTML mail hide text with attributes (``hidden``, ``aria-hidden``), inline styles
(``display:none``, ``visibility:hidden``, zero font size or opacity, white text on a white page) or
simple ``<style>`` rules on a class or id — a cheap carrier for instructions aimed at an AI. This is
a static check (no layout engine): it catches the common forms, not every CSS trick.
"""

from __future__ import annotations

import re

_HIDING = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*(hidden|collapse)|font-size\s*:\s*0(\.0+)?(px|pt|em|rem|%)?\s*(;|$|!)"
    r"|opacity\s*:\s*0(\.0+)?\s*(;|$|!)|(^|;)\s*(max-)?height\s*:\s*0(px)?\s*(;|$|!).*overflow\s*:\s*hidden",
    re.IGNORECASE,
)
_WHITE = re.compile(r"^\s*(white|#fff|#ffffff|rgb\(\s*255\s*,\s*255\s*,\s*255\s*\))\s*$", re.IGNORECASE)
_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_SIMPLE_SELECTOR = re.compile(r"^[.#][A-Za-z_][\w-]*$")


def _declarations(style: str) -> dict[str, str]:
    pairs = (part.split(":", 1) for part in style.split(";") if ":" in part)
    return {name.strip().lower(): value.strip().lower().replace("!important", "").strip() for name, value in pairs}


def _hidden_selectors(soup) -> tuple[set[str], set[str]]:  # noqa: ANN001 - a BeautifulSoup tree
    """Classes and ids that ``<style>`` blocks hide (simple selectors only)."""
    classes, ids = set(), set()
    for style in soup.find_all("style"):
        for selectors, body in _RULE.findall(style.get_text()):
            if not _HIDING.search(body):
                continue
            for selector in (s.strip() for s in selectors.split(",")):
                if _SIMPLE_SELECTOR.match(selector):
                    (classes if selector[0] == "." else ids).add(selector[1:])
    return classes, ids


def _background_is_light(tag) -> bool:  # noqa: ANN001
    """Whether the nearest declared background (self or ancestor) is white, or none is declared."""
    node = tag
    while node is not None and getattr(node, "attrs", None) is not None:
        decl = _declarations(node.attrs.get("style") or "")
        colour = decl.get("background-color") or decl.get("background") or node.attrs.get("bgcolor")
        if colour:
            return bool(_WHITE.match(colour.split()[0]))
        node = node.parent
    return True


def _is_hidden(tag, classes: set[str], ids: set[str]) -> bool:  # noqa: ANN001
    attrs = tag.attrs or {}
    if "hidden" in attrs or str(attrs.get("aria-hidden", "")).lower() == "true":
        return True
    if classes.intersection(attrs.get("class") or []) or attrs.get("id") in ids:
        return True
    style = attrs.get("style") or ""
    if _HIDING.search(style):
        return True
    colour = _declarations(style).get("color")
    return bool(colour and _WHITE.match(colour) and _background_is_light(tag))


def drop_hidden_elements(soup) -> None:  # noqa: ANN001 - a BeautifulSoup tree, changed in place
    """Remove every element a reader would not see (see the module docstring)."""
    classes, ids = _hidden_selectors(soup)
    doomed = [tag for tag in soup.find_all(True) if _is_hidden(tag, classes, ids)]
    for tag in doomed:
        if not tag.decomposed:
            tag.decompose()
