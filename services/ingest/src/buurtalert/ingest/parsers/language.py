"""Language detection with lingua (offline, deterministic, accurate on short texts):
restricted to the languages our members write, and silent when unsure."""

from __future__ import annotations

from functools import cache

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

LANGUAGES = (
    Language.DUTCH,
    Language.FRENCH,
    Language.GERMAN,
    Language.ENGLISH,
    Language.TURKISH,
    Language.ARABIC,
    Language.POLISH,
)
MIN_LETTERS = 12  # below this a guess is noise ("ok", "112!")
#: Detection reads the start only: its cost grows faster than the text (a 3 MB word stalled ingest).
PREFIX = 1000


@cache
def _detector() -> LanguageDetector:
    return (
        LanguageDetectorBuilder.from_languages(*LANGUAGES)
        .with_minimum_relative_distance(0.1)
        .with_preloaded_language_models()
        .build()
    )


def warm_up() -> None:
    """Load the models now, at start-up, so the first message does not wait for them."""
    _detector()


def detect(text: str) -> str | None:
    """ISO 639-1 code of ``text``'s language (judged on its first :data:`PREFIX`
    characters), or None when the text is too short or unclear."""
    text = text[:PREFIX]
    if sum(ch.isalpha() for ch in text) < MIN_LETTERS:
        return None
    found = _detector().detect_language_of(text)
    return found.iso_code_639_1.name.lower() if found is not None else None
