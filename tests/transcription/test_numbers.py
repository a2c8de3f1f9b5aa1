"""Numbers as said: a digit string said with pauses is not turned into a false grouped number."""

import pytest

from transcription.engine.text import fix_digit_grouping


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("One zero zero zero one: 1,0001.", "One zero zero zero one: 10001."),
        ("Call 1,0001, then 12,345,678.", "Call 10001, then 12,345,678."),
        ("It costs 1,000 dollars.", "It costs 1,000 dollars."),
        ("Items 1, 2, 3.", "Items 1, 2, 3."),
        ("Pi is 3.14,15 or so.", "Pi is 3.14,15 or so."),
        ("In 2024.", "In 2024."),
    ],
)
def test_only_a_grouping_nobody_writes_loses_its_commas(written, kept):
    assert fix_digit_grouping(written, "en") == kept


def test_languages_with_a_decimal_comma_keep_theirs():
    assert fix_digit_grouping("Das kostet 10,50 Euro.", "de") == "Das kostet 10,50 Euro."
    assert fix_digit_grouping("价格是1,0001元", "zh") == "价格是10001元"
