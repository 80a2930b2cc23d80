"""Moderation reads a message's language from its text (fastText's lid.176)."""

from __future__ import annotations

import pytest

from buurtalert.moderation.language import language_of


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Verdachte man met rode jas probeert deuren te openen", "nl"),
        ("Amai, da's hier nen dikke gast mee ne zwarte kap die rond de auto's sluipt", "nl"),
        ("Suspicious man in a red coat trying door handles", "en"),
        ("Homme suspect avec une veste rouge qui essaie les portes", "fr"),
        ("Verdächtiger Mann mit roter Jacke versucht Türen zu öffnen", "de"),
        ("FEUER IM ALTPAPIERCONTAINER AM NETTO PARKPLATZ, FEUERWEHR KOMMT SCHON, ABSTAND HALTEN", "de"),
        ("Podejrzany mężczyzna w czerwonej kurtce próbuje otworzyć drzwi", "pl"),
        ("Kırmızı ceketli şüpheli bir adam kapıları açmaya çalışıyor", "tr"),
        ("رجل مشبوه يرتدي سترة حمراء يحاول فتح الأبواب", "ar"),
    ],
)
def test_the_language_is_read_from_the_text(text: str, language: str) -> None:
    assert language_of(text) == language


def test_a_tag_counts_only_where_the_text_is_too_short_to_tell() -> None:
    """Texts such as "Ok 👍" and "112!" say nothing about their language: the tag the
    message came with (if any) is kept. A longer text overrules its tag."""
    assert language_of("Ok 👍") is None and language_of("112!", "fr") == "fr"
    assert language_of("Suspicious man in a red coat trying door handles", "tr") == "en"


def test_only_the_start_is_read() -> None:
    """A Dutch report followed by pages of Polish is read by its start, so a huge text
    costs no more than a short one (ingest's earlier detector was quadratic in a long
    word: a 3 MB one-word mail stalled its loop)."""
    dutch = "Verdachte man met rode jas probeert bij de school de deuren van auto's te openen. "
    dutch += "Politie is gebeld. "
    assert language_of(dutch + "Uwaga na złodzieja! " * 5_000) == "nl"
