"""Text for the simulator: a cheap deterministic PRNG, prose banks and word counting.

A token is a whitespace-separated word everywhere in the simulator. Prose is cut from
long texts built once at import from a small vocabulary, so a request pays for one
slice, not for generating words one at a time.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import random
import re

_MASK64 = (1 << 64) - 1
_BASE58 = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_TABLE = bytes(_BASE58[i % 58] for i in range(256))


class Rng:
    """A 64-bit LCG: far cheaper to seed than `random.Random`, good enough for prose."""

    __slots__ = ("_state",)

    def __init__(self, seed: int) -> None:
        self._state = seed & _MASK64

    def below(self, n: int) -> int:
        """Return an int in [0, n)."""
        self._state = (self._state * 6364136223846793005 + 1442695040888963407) & _MASK64
        return (self._state >> 32) % n

    def between(self, low: int, high: int) -> int:
        """Return an int in [low, high]."""
        return low + self.below(high - low + 1)

    def chance(self, percent: int) -> bool:
        return self.below(100) < percent

    def choice(self, items: list[str] | tuple[str, ...]) -> str:
        return items[self.below(len(items))]


def ident(digest: bytes, label: bytes, size: int = 22) -> str:
    """A base58-looking id body derived from the request digest and a label."""
    raw = hashlib.blake2b(label + digest, digest_size=size).digest()
    return raw.translate(_BASE58_TABLE).decode("ascii")


def base58(raw: bytes) -> str:
    return raw.translate(_BASE58_TABLE).decode("ascii")


def opaque(digest: bytes, label: bytes, size: int = 96) -> str:
    """A deterministic base64 blob, like the API's signatures and encrypted fields."""
    chunks = []
    for i in range(0, size, 64):
        part = hashlib.blake2b(label + bytes([i // 64]) + digest, digest_size=64).digest()
        chunks.append(part)
    return base64.b64encode(b"".join(chunks)[:size]).decode("ascii")


# Every byte that str.split() takes for whitespace in ASCII text (\t\n\v\f\r, \x1c-\x1f) -> b" ".
_ASCII_SPACES = bytes(32 if chr(b).isspace() else b for b in range(128)) + bytes(range(128, 256))


def count_words(text: str) -> int:
    """The number of whitespace-separated words, as len(text.split()) counts them."""
    if not text.isascii():
        return len(text.split())
    # ASCII (most prompts): count separators in C rather than building every word; one
    # translation makes every kind of whitespace a space, so single-spaced text needs no split.
    spaced = text.encode("ascii").translate(_ASCII_SPACES)
    if b"  " in spaced:
        return len(spaced.split())
    if not spaced:
        return 0
    return spaced.count(b" ") + 1 - (spaced[0] == 32) - (spaced[-1] == 32)


def cut_words(text: str, n: int) -> str:
    """Keep the first `n` words of `text`, with their original spacing."""
    if n <= 0:
        return ""
    parts = text.split(None, n)  # the last part is the rest, left-stripped
    if len(parts) <= n:
        return text.rstrip()
    return text[: len(text) - len(parts[n])].rstrip()


# Slot -> words; "a/b" gives the singular and plural (or base and third-person) forms.
_VOCABULARY = {
    "n": """system/systems model/models process/processes result/results method/methods
        question/questions pattern/patterns request/requests record/records
        network/networks garden/gardens river/rivers city/cities library/libraries
        engine/engines signal/signals project/projects market/markets team/teams
        design/designs answer/answers schedule/schedules budget/budgets report/reports
        window/windows harbor/harbors forest/forests planet/planets theory/theories
        sample/samples""",
    "v": """improve/improves support/supports describe/describes connect/connects
        reduce/reduces explain/explains follow/follows shape/shapes measure/measures
        protect/protects change/changes organize/organizes reveal/reveals
        balance/balances extend/extends""",
    "g": """checking reading testing planning comparing reviewing building tracking
        adjusting sorting""",
    "a": """simple careful large quiet useful steady modern local clear gentle complex
        familiar small reliable bright distant practical common early broad""",
    "r": "quickly carefully often rarely gradually clearly usually quietly steadily",
    "d": "the the the each every this that one",
    "q": "the the these many some most",
    "p": "in across near around through beyond within",
    "i": """In_practice For_example Over_time In_general By_contrast As_a_result
        In_many_cases At_the_same_time Historically Today""",
}
_WORDS = {
    slot: [entry.replace("_", " ").split("/") for entry in words.split()]
    for slot, words in _VOCABULARY.items()
}

_PROSE_TEMPLATES = [
    "{D} {a} {n} {vs} {d} {n} {p} {d} {a} {n}.",
    "{I}, {d} {n} {vs} {q} {np} of {d} {a} {n}.",
    "This means that {np} can {v} {d} {a} {n} without {g} {d} {n}.",
    "It is worth noting that {np} {v} {r} when {d} {n} {vs} {d} {n}.",
    "One {a} approach is to {v} {d} {n} before {g} {q} {np}.",
    "{Np} and {np} often {v} the same {a} {n}.",
    "{I}, {d} {a} {n} {r} {vs} {d} {n}.",
    "Most {np} {v} {d} {n} {p} {d} {a} {n}, and {d} {n} {vs} {r}.",
]
_REASONING_TEMPLATES = [
    "Let me think about {d} {n} first.",
    "The key question is whether {d} {n} {vs} {d} {a} {n}.",
    "I should check {d} {a} {n} before answering.",
    "That suggests {np} {v} {r} {p} {d} {n}.",
    "So the answer should mention {d} {a} {n}.",
    "Maybe {d} {n} {vs} {q} {np}, but I need to compare {d} {a} {n} first.",
    "If {d} {n} {vs} {d} {n}, then {np} {v} {r}.",
]


def _sentence(rng: random.Random, template: list[str]) -> str:
    """Fill a split template; odd items are slots (`n`, `np` plural, `D` capital...)."""
    parts = template.copy()
    for i in range(1, len(parts), 2):
        key = parts[i]
        forms = rng.choice(_WORDS[key[0].lower()])
        word = forms[-1] if key.lower().endswith(("np", "vs")) else forms[0]
        parts[i] = word[0].upper() + word[1:] if key[0].isupper() else word
    return "".join(parts)


class Prose:
    """A long text of sentences; `take` slices whole sentences from a random start."""

    def __init__(self, templates: list[str], sentences: int, seed: int) -> None:
        rng = random.Random(seed)
        split = [re.split(r"\{(\w+)\}", template) for template in templates]
        parts: list[str] = []
        self._offsets = [0]  # char offset where sentence i starts
        self._words = [0]  # words before sentence i
        text_len = words = 0
        for i in range(sentences):
            sentence = _sentence(rng, rng.choice(split))
            sep = "\n\n" if i % 5 == 4 else " "
            parts.append(sentence + sep)
            text_len += len(sentence) + len(sep)
            words += sentence.count(" ") + 1
            self._offsets.append(text_len)
            self._words.append(words)
        self._text = "".join(parts)
        self._count = sentences

    def take(self, rng: Rng, words: int, *, at_most: bool = False) -> str:
        """Whole sentences of at least `words` words (at most, with `at_most`)."""
        return self.take_counted(rng, words, at_most=at_most)[0]

    def take_counted(self, rng: Rng, words: int, *, at_most: bool = False) -> tuple[str, int]:
        """Like `take`, also returning the number of words taken."""
        if words <= 0:
            return "", 0
        start = rng.below(self._count)
        if at_most:
            end = bisect.bisect_right(self._words, self._words[start] + words, lo=start) - 1
            text = self._text[self._offsets[start] : self._offsets[end]]
            return text.rstrip(), self._words[end] - self._words[start]
        pieces = []
        taken = 0
        while True:
            goal = self._words[start] + words - taken
            end = bisect.bisect_left(self._words, goal, lo=start + 1)
            if end <= self._count:
                pieces.append(self._text[self._offsets[start] : self._offsets[end]])
                taken += self._words[end] - self._words[start]
                break
            pieces.append(self._text[self._offsets[start] :])
            taken += self._words[self._count] - self._words[start]
            start = 0
        return "".join(pieces).rstrip(), taken


PROSE = Prose(_PROSE_TEMPLATES, 1024, seed=20250305)
REASONING = Prose(_REASONING_TEMPLATES, 256, seed=20250522)
