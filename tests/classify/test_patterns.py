"""Custom pattern dictionaries: accepted when well-formed, refused with a clear error if not."""

import pytest

from callcenter.classify import Classifier, PatternError, default_patterns
from callcenter.classify.fuzzy import within_one_edit


def test_custom_intent_with_all_word_kinds():
    patterns = {
        "intents": {
            "warranty": {"ru": ["гарантийный талон|ремонт", "=гарантийка"], "en": ["warrant*"]},
        },
        "negation": {"ru": ["не нужный _"]},
    }
    classifier = Classifier(patterns=patterns)
    assert classifier.intents == ("warranty",)
    assert classifier.classify("где гарантийные талоны?").intents == ("warranty",)
    assert classifier.classify("а гарантийка есть?").intents == ("warranty",)
    assert classifier.classify("Is there a warranty?").intents == ("warranty",)
    assert classifier.classify("ремонт не нужен").intents == ()
    assert classifier.classify("где мой заказ").intents == ()


def test_edited_defaults_change_the_result():
    patterns = default_patterns()
    patterns["intents"]["delivery"]["ru"].append("ямщик")
    assert Classifier(patterns=patterns).classify("где ямщик").intents == ("delivery",)
    assert Classifier().classify("ямщик").intents == ()


def test_default_patterns_is_a_copy():
    default_patterns()["intents"].clear()
    assert "delivery" in default_patterns()["intents"]


@pytest.mark.parametrize(
    ("patterns", "message"),
    [
        ([], r"patterns: expected a table/dict"),
        ({}, r"intents: expected a table/dict"),
        ({"intents": {}}, r"at least one intent"),
        ({"intents": {"x": {"ru": ["a"]}}, "extra": 1}, r"unknown key\(s\) \['extra'\]"),
        ({"intents": {"Bad-Name": {"ru": ["a"]}}}, r"bad intent name 'Bad-Name'"),
        ({"intents": {"x": {"de": ["a"]}}}, r"intents\.x: unknown key 'de'"),
        ({"intents": {"x": {"ru": "где"}}}, r"intents\.x\.ru: expected a list"),
        ({"intents": {"x": {"ru": []}}}, r"intents\.x: no patterns"),
        ({"intents": {"x": {"ru": ["ok", 5]}}}, r"intents\.x\.ru\[1\]: expected a string"),
        ({"intents": {"x": {"ru": ["  "]}}}, r"intents\.x\.ru\[0\]: empty pattern"),
        ({"intents": {"x": {"en": ["track-number"]}}}, r"en\[0\]: bad word 'track-number'"),
        ({"intents": {"x": {"en": ["=ship*"]}}}, r"bad word '=ship\*'"),
        ({"intents": {"x": {"en": ["a||b"]}}}, r"bad word ''"),
        ({"intents": {"x": {"ru": ["где _"]}}}, r"'_' is only allowed in negation"),
        ({"intents": {"x": {"ru": ["a"]}}, "max_gap": -1}, r"max_gap: expected an integer"),
        ({"intents": {"x": {"ru": ["a"]}}, "max_gap": True}, r"max_gap: expected an integer"),
        (
            {"intents": {"x": {"ru": ["a"]}}, "negation": {"ru": ["не _ _"]}},
            r"negation\.ru\[0\]: a template needs exactly one '_'",
        ),
        (
            {"intents": {"x": {"ru": ["a"]}}, "negation": {"max_gap": 99}},
            r"negation\.max_gap: expected an integer from 0 to 10",
        ),
    ],
)
def test_malformed_patterns_are_refused(patterns, message):
    with pytest.raises(PatternError, match=message):
        Classifier(patterns=patterns)


@pytest.mark.parametrize(
    ("a", "b", "close"),
    [
        ("заказ", "заказ", True),
        ("заказз", "заказ", True),
        ("рзмер", "размер", True),
        ("оплотил", "оплатил", True),
        ("reciev", "receiv", True),
        ("заказ", "показ", False),
        ("возврат", "возрта", False),
    ],
)
def test_within_one_edit(a, b, close):
    assert within_one_edit(a, b) is close
