"""Identity matching as pure logic: precedence, one-to-one, blocks, numbers, thresholds, decisions."""

from __future__ import annotations

from datetime import date

from model.identity import Candidate, Decision, Link, Thresholds, match, normalise_name, numbers


def clusters(result) -> set[frozenset[tuple[str, str]]]:
    return {frozenset(m.ref for m in c) for c in result.clusters if len(c) > 1}


def c(source: str, sid: str, name: str | None = None, keys: tuple[str, ...] = (), **kw) -> Candidate:
    return Candidate((source, sid), name, frozenset(keys), **kw)


def test_names_normalise_accents_notes_punctuation_and_keep_numbers() -> None:
    assert normalise_name("Chloé  Müller (Contractor)") == "chloe muller"
    assert normalise_name("Müller, Jonas") == "muller jonas"
    assert normalise_name("Søren Yılmaz") == "soren yilmaz"
    assert numbers(normalise_name("Data Platform 2025")) == {"2025"}
    assert numbers(normalise_name("Mobile App v2")) == {"v2"}


def test_shared_key_matches_across_sources_with_method_and_reason() -> None:
    result = match([c("jira:a", "1", "Anna", ("anna@x",)), c("msp:b", "R1", "A. B.", ("anna@x",))])
    (cluster,) = [cl for cl in result.clusters if len(cl) > 1]
    assert {m.method for m in cluster} == {"key"}
    assert cluster[0].reason == "same key anna@x" and cluster[0].confidence == 100.0


def test_one_record_per_source_even_when_keys_collide() -> None:
    # Two Jira accounts share an e-mail (a re-created account): only the first joins; no silent double.
    result = match(
        [c("jira:a", "1", keys=("k",)), c("jira:a", "2", keys=("k",)), c("po:b", "9", keys=("k",))]
    )
    assert clusters(result) == {frozenset({("jira:a", "1"), ("po:b", "9")})}


def test_typo_and_reordered_words_accept_numbers_must_agree() -> None:
    result = match(
        [
            c("po:x", "1", "Custmer Portal"),
            c("jira:y", "10", "Customer Portal"),
            c("po:x", "2", "Hub Master Data"),
            c("jira:y", "11", "Master Data Hub"),
            c("po:x", "3", "Data Lake Migration 2025"),
            c("jira:y", "12", "Data Lake Migration"),
            c("po:x", "4", "Mobile App v3"),
            c("jira:y", "13", "Mobile App v2"),
        ]
    )
    assert clusters(result) == {
        frozenset({("po:x", "1"), ("jira:y", "10")}),
        frozenset({("po:x", "2"), ("jira:y", "11")}),
    }
    assert all(
        m.method == "fuzzy" and m.confidence >= 95 for cl in result.clusters if len(cl) > 1 for m in cl
    )
    assert result.reviews == []  # different numbers are no candidates at all, not review items


def test_middle_scores_go_to_review_and_low_scores_are_rejected() -> None:
    result = match(
        [
            c("po:x", "1", "Katarzyna Kowalsky"),
            c("jira:y", "9", "Katarzyna Kowalski"),
            c("jira:y", "8", "Bo Li"),
        ]
    )
    assert clusters(result) == set()
    (rv,) = result.reviews
    assert (rv.ref, rv.candidate) in {((("po:x", "1")), ("jira:y", "9")), (("jira:y", "9"), ("po:x", "1"))}
    assert 80 <= rv.score < 95
    strict = match([c("po:x", "1", "Katarzyna Kowalsky"), c("jira:y", "9", "Katarzyna Kowalski")],
                   thresholds=Thresholds(accept=99, review=99))  # fmt: skip
    assert clusters(strict) == set() and strict.reviews == []


def test_an_ambiguous_name_is_reviewed_not_guessed() -> None:
    # Two Jira "Ben Kowalski" accounts and one Project resource: a coin flip would be a wrong merge.
    result = match(
        [c("jira:y", "1", "Ben Kowalski"), c("jira:y", "2", "Ben Kowalski"), c("po:x", "r", "Ben Kowalski")]
    )
    assert clusters(result) == set()
    asked = {frozenset((r.ref, r.candidate)) for r in result.reviews}
    assert asked == {frozenset({("po:x", "r"), ("jira:y", "1")}), frozenset({("po:x", "r"), ("jira:y", "2")})}


def test_blocks_keep_fuzzy_inside_cost_centre_and_dates() -> None:
    a = c("po:x", "1", "Field Service", cost_centre="CC-1", start=date(2026, 1, 1), finish=date(2026, 6, 30))
    other_cc = c("erp:z", "P1", "Field Service", cost_centre="CC-2")
    other_time = c("jira:y", "7", "Field Service", start=date(2024, 1, 1), finish=date(2024, 12, 31))
    assert clusters(match([a, other_cc])) == set()
    assert clusters(match([a, other_time])) == set()
    assert clusters(match([a, c("jira:y", "8", "Field Service")])) == {
        frozenset({("po:x", "1"), ("jira:y", "8")})
    }


def test_precedence_manual_over_key_over_rule_over_fuzzy() -> None:
    cands = [
        c("jira:y", "1", "Anna Berg", ("a@x",)),
        c("po:x", "1", "Anna Berg", ("a@x",)),
        c("erp:z", "7", "Anna Berg"),
    ]
    # A person says the ERP record is someone else: no rule or fuzzy may join it.
    veto = Decision(("erp:z", "7"), ("jira:y", "1"), same=False)
    rule = Link(("erp:z", "7"), ("po:x", "1"), "rule", 90.0, "same name")
    result = match(cands, [rule], [veto])
    assert clusters(result) == {frozenset({("jira:y", "1"), ("po:x", "1")})}
    # Manual "same" decisions win over the shared key: the key link would put two ERP records together.
    manual = Decision(("erp:z", "7"), ("po:x", "1"), same=True)
    result = match(
        [*cands, c("erp:z", "8", "Zed")], [], [manual, Decision(("erp:z", "8"), ("jira:y", "1"), True)]
    )
    methods = {m.ref: m.method for cl in result.clusters for m in cl}
    assert methods[("erp:z", "7")] == "manual" and methods[("erp:z", "8")] == "manual"
    assert clusters(result) == {
        frozenset({("erp:z", "7"), ("po:x", "1")}),
        frozenset({("erp:z", "8"), ("jira:y", "1")}),
    }


def test_rule_links_apply_strongest_first_and_stay_one_to_one() -> None:
    cands = [c("po:x", "1"), c("jira:y", "A"), c("jira:y", "B")]
    links = [
        Link(("po:x", "1"), ("jira:y", "B"), "rule", 60.0, "3 of 5 tasks"),
        Link(("po:x", "1"), ("jira:y", "A"), "rule", 100.0, "5 of 5 tasks"),
    ]
    assert clusters(match(cands, links)) == {frozenset({("po:x", "1"), ("jira:y", "A")})}
