"""predict-scaling's page: repeats fold into one line per configuration."""
from __future__ import annotations

from benchmarks.predict_scaling import Measured, table


def _run(scale: int, peak: float, rate: float, repeat: int) -> Measured:
    return Measured("ner", "current", False, scale, 10 * scale, peak, 1.0, 2.0, rate, repeat)


def test_repeats_give_the_highest_peak_and_the_median_rate():
    runs = [_run(1, 100, 50, 0), _run(16, 110, 40, 0), _run(1, 105, 70, 1), _run(16, 125, 60, 1),
            _run(1, 101, 60, 2), _run(16, 111, 45, 2)]
    lines = table(runs).splitlines()[2:]
    assert len(lines) == 2
    one, sixteen = (line.split(" | ") for line in lines)
    assert one[5:9] == ["105", "1.00x", "60.0", "50.0-70.0"]
    assert sixteen[5:9] == ["125", "1.19x", "45.0", "40.0-60.0"]
