"""The moderation corpus and its evaluation: what the figures of ``make eval`` rest on."""

from __future__ import annotations

from collections import Counter

from buurtalert.moderation.evaluate import UNSEEN, Evaluation
from buurtalert.moderation.training import CORPUS, Item, held_back, load_corpus
from buurtalert.shared.models import Role


def test_the_corpus_is_large_real_and_multilingual() -> None:
    """At least 600 labelled messages, at least 200 of them quoted from public sources
    (each naming its page), at least 100 in French, German or English; every label is a
    decision with at least one reason code."""
    items = load_corpus()
    assert len(items) >= 600
    quotes = [i for i in items if i.kind == "quote"]
    assert len(quotes) >= 200
    assert all(q.source.startswith("http") for q in quotes)
    assert sum(i.language in ("fr", "de", "en") for i in items) >= 100
    assert {i.expected for i in items} == {"forward", "review", "reject"}
    assert all(i.reasons for i in items)
    assert len({i.id for i in items}) == len(items)


def test_held_back_part_is_chosen_by_source_and_never_in_training() -> None:
    """No source has items on both sides of the split, and the held-back part holds
    quoted messages only, from several sources and all four languages."""
    items = load_corpus()
    sides: dict[str, set[bool]] = {}
    for item in items:
        sides.setdefault(item.group, set()).add(item.held_back)
    assert all(len(s) == 1 for s in sides.values())
    held = [i for i in items if i.held_back]
    assert held and all(i.kind == "quote" for i in held)
    assert len({i.group for i in held}) >= 10
    assert set(Counter(i.language for i in held)) == {"nl", "fr", "de", "en"}
    assert not held_back("written-nlw-00")


def test_the_unseen_part_shares_no_site_and_no_message_with_the_corpus() -> None:
    """The second labeller's set comes from sites the corpus does not use, so neither the
    training nor the held-back figures can have seen its sources; training reads only the
    corpus file."""
    unseen, corpus = load_corpus(UNSEEN), load_corpus()
    assert len(unseen) >= 100 and all(i.kind == "quote" for i in unseen)
    assert set(Counter(i.language for i in unseen)) == {"nl", "fr", "de", "en"}
    assert not {i.group for i in unseen} & {i.group for i in corpus}
    assert not {" ".join(i.text.split()) for i in unseen} & {" ".join(i.text.split()) for i in corpus}
    assert load_corpus.__defaults__ == (CORPUS,) and CORPUS.name == "messages.jsonl"


def item(identifier: str, expected: str, language: str = "nl") -> Item:
    return Item(
        identifier, "tekst", language, "NL", Role.RESIDENT, expected, ("x",), "quote", "https://x", "g"
    )


def test_safety_figures_count_what_they_name() -> None:
    """Unsafe forwarded counts held-or-rejected messages that were forwarded, as a share
    of all messages that should not be forwarded; alerts rejected counts forwardable
    messages that were rejected; accuracy and recall follow the confusion matrix."""
    evaluation = Evaluation("t")
    evaluation.add(item("a", "forward"), "forward", "")
    evaluation.add(item("b", "forward"), "reject", "")
    evaluation.add(item("c", "review"), "forward", "")
    evaluation.add(item("d", "reject", "fr"), "reject", "")
    assert evaluation.accuracy == 0.5
    assert evaluation.unsafe_forwarded == ["c"] and evaluation.unsafe_share == 0.5
    assert evaluation.alerts_rejected == ["b"]
    assert evaluation.precision_recall("forward") == (0.5, 0.5)
    assert evaluation.only("fr").total == 1
    assert not evaluation.goals_met
