"""Document text is untrusted input to the model that reads a context pack.

- Citation markers: the pack numbers passages ``[1]``, ``[2]`` …; a ``[3]`` written inside a document
  would make the model cite the wrong source. In the context string such markers become ``(3)``;
  the passage's own ``text`` stays byte-exact, so spans and citations still point into the stored text.
- Instructions to a model ("ignore previous instructions", "you are now …", chat-template tokens)
  are not removed — a document may legitimately discuss them — but flagged, so the orchestration
  layer can drop, quote or warn (``flags: ["instructions"]``).
"""

from __future__ import annotations

import re

# [3], [ 3 ], [3, 4], [3-5], [^3] and full-width 【3】 / ［3］.
_MARKER = re.compile(r"\[\s*\^?\d{1,4}(?:\s*[,;–-]\s*\^?\d{1,4})*\s*\]|[【［]\s*\d{1,4}\s*[】］]")

_PREVIOUS = r"(?:all\s+|any\s+|the\s+|your\s+|of\s+the\s+)*(?:previous|prior|above|earlier|preceding|foregoing|original)"
_ORDERS = r"(?:instructions?|prompts?|directions?|rules|guidelines|directives|system\s+messages?)"
_MODEL = r"(?:ai|a\.i\.|assistant|chat\s?bot|chatgpt|gpt-?\d*|claude|llm|language\s+model|model)"
# Each way of instructing a model, and the words (lower case) a match of it starts with.
_INSTRUCTION_FORMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (rf"\b(?:ignore|disregard|forget|override|skip)\s+{_PREVIOUS}\s+{_ORDERS}",
     ("ignore", "disregard", "forget", "override", "skip")),
    (rf"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:your|these|those)\s+{_ORDERS}",
     ("ignore", "disregard", "forget")),
    (r"\byou\s+are\s+now\s+(?:an?\s+)?(?:dan\b|in\s+developer\s+mode|jailbroken|unrestricted|free\s+of)", ("you",)),
    (r"\bfrom\s+now\s+on,?\s+you\s+(?:will|must|shall|are\s+to)\b", ("from",)),
    (rf"\b(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+|any\s+)?{_MODEL}\b", ("note", "message", "instruction")),
    (rf"\b(?:dear|hey|attention)\s+{_MODEL}\b", ("dear", "hey", "attention")),
    (r"\b(?:reveal|print|repeat|show)\s+(?:your|the)\s+(?:system\s+prompt|hidden\s+instructions|initial\s+instructions)",
     ("reveal", "print", "repeat", "show")),
    (r"\bsystem\s+prompt\b", ("system",)),
    (r"\bdo\s+not\s+(?:tell|inform|mention\s+(?:this\s+)?to)\s+the\s+user\b", ("do",)),
    (r"\bjailbreak", ("jailbreak",)),
    (r"\bdeveloper\s+mode\b", ("developer",)),
    (r"<\|(?:im_start|im_end|system|user|assistant|endoftext)\|>", ("<|",)),
    (r"\[/?INST\]", ("[inst]", "[/inst]")),
    (r"<<SYS>>", ("<<sys>>",)),
    (rf"\bnew\s+{_ORDERS}\s*:", ("new",)),
)
_INSTRUCTIONS = re.compile("|".join(form for form, _ in _INSTRUCTION_FORMS), re.IGNORECASE)
_FORMS_BY_START: dict[str, list[re.Pattern]] = {}
for _form, _starts in _INSTRUCTION_FORMS:
    for _word in _starts:
        _FORMS_BY_START.setdefault(_word, []).append(re.compile(_form, re.IGNORECASE))
_STARTS = re.compile("|".join(re.escape(w) for w in sorted(_FORMS_BY_START, key=len, reverse=True)))
_MARKER_OPENERS = ("[", "【", "［")
# The non-ASCII characters case-insensitive matching takes for ASCII letters (İ ı → i, ſ → s, K → k;
# tests/test_untrusted_text.py checks every code point), folded to them before the words are looked for.
_ASCII_LOOKALIKES = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
_LOOKALIKE_CHARS = tuple(chr(c) for c in _ASCII_LOOKALIKES)


def _has_marker(text: str) -> bool:
    return any(opener in text for opener in _MARKER_OPENERS) and _MARKER.search(text) is not None


def _reads_like_instructions(text: str) -> bool:
    """``_INSTRUCTIONS.search(text)``, tried only where a form's first word occurs: one scan for plain
    words over the lower-cased text instead of the whole expression at every offset (~20x faster).

    A first word hidden inside an earlier found word follows a letter, where its form's ``\b`` fails."""
    if not text.isascii() and any(ch in text for ch in _LOOKALIKE_CHARS):
        text_for_words = text.translate(_ASCII_LOOKALIKES)
    else:
        text_for_words = text
    lower = text_for_words.lower()
    if len(lower) != len(text):  # lower case moved offsets (e.g. "İ" → "i̇"): the whole expression
        return _INSTRUCTIONS.search(text) is not None
    return any(form.match(text, m.start()) for m in _STARTS.finditer(lower) for form in _FORMS_BY_START[m.group()])


def neutralise_markers(text: str) -> str:
    """Document text with citation-like markers rewritten (``[3]`` → ``(3)``) for the context string."""
    if not any(opener in text for opener in _MARKER_OPENERS):
        return text
    return _MARKER.sub(lambda m: "(" + m.group(0).strip("[]【】［］ ").lstrip("^") + ")", text)


def passage_flags(text: str) -> tuple[str, ...]:
    """What an orchestrator should know about a passage: ``markers`` (document text carried citation
    markers, neutralised in the context), ``instructions`` (it reads like instructions to a model)."""
    flags = []
    if _has_marker(text):
        flags.append("markers")
    if _reads_like_instructions(text):
        flags.append("instructions")
    return tuple(flags)
