"""The lines buurtalert writes to people exist in every language, with the same blanks."""

from __future__ import annotations

import re

import pytest

from buurtalert.shared.texts import LANGUAGES, line, texts


def test_every_line_exists_in_every_language_with_the_same_placeholders() -> None:
    """A missing translation or a placeholder only one language has would break a send."""
    for key, versions in texts().items():
        assert set(versions) == set(LANGUAGES), key
        blanks = {lang: set(re.findall(r"\{(\w+)\}", text)) for lang, text in versions.items()}
        assert len({frozenset(b) for b in blanks.values()}) == 1, (key, blanks)


def test_a_line_is_filled_in_and_falls_back_to_english_for_an_unknown_language() -> None:
    """Unknown languages (Turkish, none) get English; placeholders are filled in."""
    assert line("saar_reminder", "de", numbers="110") != line("saar_reminder", "en", numbers="110")
    assert "110" in line("saar_reminder", "de", numbers="110")
    assert line("saar_reminder", "tr", numbers="112") == line("saar_reminder", "en", numbers="112")
    assert line("saar_reminder", None, numbers="112") == line("saar_reminder", "en", numbers="112")
    with pytest.raises(KeyError):
        line("no.such.line", "nl")
