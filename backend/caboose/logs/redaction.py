"""Secret redaction: every variable value of 6 characters or more becomes ``*****`` in logs.

Why one trie-shaped regular expression: a service may have hundreds of variables and an app may
print ten thousand lines a second. A plain alternation ``a|b|c…`` makes the regex engine try
every value at every position of every line; a pattern shaped like the trie of the values
(``sec(?:ret1|ond)``) tries one branch per character, and most lines are rejected by one C-level
``search`` without building anything in Python.

Why masking the *union* of all occurrences rather than replacing matches one after another: with
overlapping values (``"abcdef12"`` and ``"ef123456"`` in ``"abcdef123456"``) a left-to-right
replacement hides the first and leaves part of the second readable. A look-ahead finds the
longest value starting at each position; merging those spans masks every character that belongs
to any occurrence of any value.

Short values (``"true"``, ``"3000"``) are left alone: masking them would blank half the log and
protect nothing. ANSI colour codes are never touched (they are not values).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote

MASK: Final = "*****"
MIN_SECRET_LENGTH: Final = 6


def _variants(value: str) -> Iterable[str]:
    """The forms a value takes in logs: itself, each of its lines (a PEM key is printed line by
    line), and URL-encoded (a password inside a printed connection URL)."""
    yield value
    if "\n" in value:
        yield from (part.strip() for part in value.splitlines())
    encoded = quote(value, safe="")
    if encoded != value:
        yield encoded


_TrieNode = dict[str, "_TrieNode"]
_END: Final = ""  # marks "a value ends here" in a trie node (no real edge is the empty string)


def _trie_pattern(values: Iterable[str]) -> str:
    trie: _TrieNode = {}
    for value in values:
        node = trie
        for char in value:
            node = node.setdefault(char, {})
        node[_END] = {}

    def render(node: _TrieNode) -> str:
        # Runs of single-child nodes are plain text: only branch points recurse, so a 4 KB
        # value costs one level of recursion, not 4096.
        parts: list[str] = []
        while True:
            edges = [char for char in node if char != _END]
            if len(edges) == 1 and _END not in node:
                parts.append(re.escape(edges[0]))
                node = node[edges[0]]
                continue
            break
        if edges:
            branches = "|".join(re.escape(char) + render(node[char]) for char in sorted(edges))
            # Greedy ``?`` when a value also ends here: the longer value wins.
            parts.append(f"(?:{branches})" + ("?" if _END in node else ""))
        return "".join(parts)

    return render(trie)


class Redactor:
    """``redactor(line)`` masks every secret value in ``line``; cheap when there is none."""

    __slots__ = ("_lookahead", "_search", "count")

    def __init__(self, values: Iterable[str]) -> None:
        secrets = {
            variant
            for value in values
            if value
            for variant in _variants(value)
            if len(variant) >= MIN_SECRET_LENGTH and not variant.isspace()
        }
        self.count = len(secrets)
        self._search: re.Pattern[str] | None = None
        self._lookahead: re.Pattern[str] | None = None
        if not secrets:
            return
        try:
            pattern = _trie_pattern(secrets)
        except RecursionError:  # pathological nesting: a flat alternation, longest first
            pattern = "|".join(re.escape(s) for s in sorted(secrets, key=len, reverse=True))
        self._search = re.compile(pattern)
        self._lookahead = re.compile(f"(?=({pattern}))")

    @property
    def is_empty(self) -> bool:
        return self._search is None

    def __call__(self, line: str) -> str:
        return self.redact(line)

    def redact(self, line: str) -> str:
        if self._search is None or self._lookahead is None:
            return line
        first = self._search.search(line)
        if first is None:
            return line
        spans: list[list[int]] = []
        for match in self._lookahead.finditer(line, first.start()):
            start, end = match.span(1)
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        pieces: list[str] = []
        position = 0
        for start, end in spans:
            pieces.append(line[position:start])
            pieces.append(MASK)
            position = end
        pieces.append(line[position:])
        return "".join(pieces)


NO_REDACTION: Final = Redactor(())
