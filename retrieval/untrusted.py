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
_INSTRUCTIONS = re.compile(
    "|".join((
        rf"\b(?:ignore|disregard|forget|override|skip)\s+{_PREVIOUS}\s+{_ORDERS}",
        rf"\b(?:ignore|disregard|forget)\s+(?:all\s+|any\s+)?(?:your|these|those)\s+{_ORDERS}",
        r"\byou\s+are\s+now\s+(?:an?\s+)?(?:dan\b|in\s+developer\s+mode|jailbroken|unrestricted|free\s+of)",
        r"\bfrom\s+now\s+on,?\s+you\s+(?:will|must|shall|are\s+to)\b",
        rf"\b(?:note|message|instructions?)\s+(?:to|for)\s+(?:the\s+|any\s+)?{_MODEL}\b",
        rf"\b(?:dear|hey|attention)\s+{_MODEL}\b",
        r"\b(?:reveal|print|repeat|show)\s+(?:your|the)\s+(?:system\s+prompt|hidden\s+instructions|initial\s+instructions)",
        r"\bsystem\s+prompt\b",
        r"\bdo\s+not\s+(?:tell|inform|mention\s+(?:this\s+)?to)\s+the\s+user\b",
        r"\bjailbreak|\bdeveloper\s+mode\b",
        r"<\|(?:im_start|im_end|system|user|assistant|endoftext)\|>|\[/?INST\]|<<SYS>>",
        rf"\bnew\s+{_ORDERS}\s*:",
    )),
    re.IGNORECASE,
)


def neutralise_markers(text: str) -> str:
    """Document text with citation-like markers rewritten (``[3]`` → ``(3)``) for the context string."""
    return _MARKER.sub(lambda m: "(" + m.group(0).strip("[]【】［］ ").lstrip("^") + ")", text)


def passage_flags(text: str) -> tuple[str, ...]:
    """What an orchestrator should know about a passage: ``markers`` (document text carried citation
    markers, neutralised in the context), ``instructions`` (it reads like instructions to a model)."""
    flags = []
    if _MARKER.search(text):
        flags.append("markers")
    if _INSTRUCTIONS.search(text):
        flags.append("instructions")
    return tuple(flags)
