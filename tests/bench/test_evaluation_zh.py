"""Character error rate for Mandarin: normalisation as ../shared/eval/README.md describes it."""

import pytest

from bench.evaluation import character_error_rate, int_to_chinese, normalize_chinese


@pytest.mark.parametrize(
    ("number", "reading"),
    [(0, "零"), (7, "七"), (10, "十"), (15, "十五"), (50, "五十"), (105, "一百零五"), (110, "一百一十"),
     (1010, "一千零一十"), (12345, "一万二千三百四十五"), (100010, "十万零一十"), (200000000, "二亿")],
)  # fmt: skip
def test_numbers_are_read_as_chinese_numerals(number, reading):
    assert int_to_chinese(number) == reading


def test_digits_percent_and_chinese_numerals_are_the_same_answer():
    reference = "富士康在印度工厂出现大规模感染目前工厂产量已下降超百分之五十"
    assert normalize_chinese("富士康在印度工廠出現大規模感染，目前工廠產量已下降超50%。") == reference
    assert character_error_rate([reference], ["富士康在印度工厂出现大规模感染,目前工厂产量已下降超 50 %"]) == 0.0


def test_years_decimals_and_leading_zeros_are_read_digit_by_digit_where_people_do():
    assert normalize_chinese("2023年增长3.5%") == "二零二三年增长百分之三点五"
    assert normalize_chinese("编号007") == "编号零零七"
    assert normalize_chinese("共1,200人") == "共一千二百人"


def test_traditional_characters_punctuation_and_spaces_do_not_count():
    assert (
        character_error_rate(["欢迎大家来体验达摩院推出的语音识别模型"], ["歡迎大家 來體驗達摩院推出的語音識別模型！"])
        == 0.0
    )


def test_cer_counts_substitutions_insertions_and_deletions_over_reference_characters():
    assert character_error_rate(["大学生获刑"], ["大学生获行"]) == pytest.approx(1 / 5)
    assert character_error_rate(["大学生获刑"], ["大学生获刑了"]) == pytest.approx(1 / 5)
    assert character_error_rate(["大学生获刑", "你好"], ["学生获刑", ""]) == pytest.approx(3 / 7)
    with pytest.raises(ValueError):
        character_error_rate(["a"], [])
