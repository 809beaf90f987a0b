"""predict-scaling's page: repeats fold into one line per configuration."""
from __future__ import annotations

from benchmarks.predict_scaling import Measured, paired, table


def _run(scale: int, peak: float, rate: float, repeat: int, code: str = "current") -> Measured:
    return Measured("ner", code, False, scale, 10 * scale, peak, 1.0, 2.0, rate, repeat)


def test_repeats_give_the_highest_peak_and_the_median_rate():
    runs = [_run(1, 100, 50, 0), _run(16, 110, 40, 0), _run(1, 105, 70, 1), _run(16, 125, 60, 1),
            _run(1, 101, 60, 2), _run(16, 111, 45, 2)]
    lines = table(runs).splitlines()[2:]
    assert len(lines) == 2
    one, sixteen = (line.split(" | ") for line in lines)
    assert one[5:9] == ["105", "1.00x", "60.0", "50.0-70.0"]
    assert sixteen[5:9] == ["125", "1.19x", "45.0", "40.0-60.0"]


def test_the_paired_ratio_divides_within_a_repeat_not_across():
    # the machine was slow in repeat 1 for both codes: paired ratios stay at 0.9, a ratio of medians would not
    runs = [_run(16, 1, 90, 0), _run(16, 1, 100, 0, "baseline"), _run(16, 1, 45, 1), _run(16, 1, 50, 1, "baseline"),
            _run(16, 1, 92, 2), _run(16, 1, 100, 2, "baseline"), _run(1, 1, 30, 0)]  # 1x: no baseline, no pair
    rows = [line for line in paired(runs).splitlines() if line.startswith("| ner")]
    assert [r.split(" | ")[2:] for r in rows] == [["16x", "3", "0.90", "0.90-0.92 |"]]
    assert paired([_run(1, 1, 30, 0)]) == ""


def test_the_squad_input_is_cut_after_its_first_questions_in_file_order():
    from benchmarks.predict_scaling import first_questions

    def article(title: str, *sizes: int) -> dict:
        return {"title": title, "paragraphs": [{"context": f"{title}{p}", "qas": [{"id": f"{title}{p}-{q}"}
                                                                                 for q in range(n)]}
                                               for p, n in enumerate(sizes)]}

    articles = [article("a", 2, 3), article("b", 4)]
    ids = lambda kept: [q["id"] for a in kept for p in a["paragraphs"] for q in p["qas"]]  # noqa: E731
    assert ids(first_questions(articles, 4)) == ["a0-0", "a0-1", "a1-0", "a1-1"]  # the paragraph cut, not dropped
    six = first_questions(articles, 6)
    assert [a["title"] for a in six] == ["a", "b"] and len(ids(six)) == 6
    assert first_questions(articles, None) == articles and ids(first_questions(articles, 99)) == ids(articles)
