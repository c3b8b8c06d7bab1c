"""The duration sketch: percentiles within 1 % of the exact nearest-rank ones, alone and merged."""

from __future__ import annotations

import math
import random

import pytest

from sdk_telemetry.store.sketch import ALPHA, ZERO_KEY, Sketch, bucket_key, bucket_value

PERCENTS = (1, 10, 25, 50, 75, 90, 95, 99, 100)


def exact(durations: list[int], percent: int) -> int:
    ordered = sorted(durations)
    return ordered[max(1, -(-len(ordered) * percent // 100)) - 1]


def distributions() -> dict[str, list[int]]:
    rng = random.Random(16)
    n = 20_000
    return {
        "lognormal": [int(rng.lognormvariate(math.log(5e6), 1.2)) for _ in range(n)],
        "bimodal": [int(rng.gauss(2e6, 2e5)) if rng.random() < 0.7 else int(rng.gauss(8e8, 5e7)) for _ in range(n)],
        "uniform": [rng.randrange(1_000, 10_000_000_000) for _ in range(n)],
        "heavy tail": [int(1e5 * rng.paretovariate(1.1)) for _ in range(n)],
        "constant": [1_234_567] * n,
        "zeros": [0] * n,
        "zeros and values": [0] * (n // 2) + [int(rng.expovariate(1 / 3e6)) + 1 for _ in range(n // 2)],
        "small integers": [rng.randrange(1, 300) for _ in range(n)],
    }


def assert_close(sketch: Sketch, durations: list[int]) -> None:
    low, high = min(durations), max(durations)
    for percent in PERCENTS:
        want, got = exact(durations, percent), sketch.quantile(percent, low, high)
        if want == 0:
            assert got == 0, (percent, got)
        else:
            assert abs(got - want) / want <= 0.01, (percent, want, got)


@pytest.mark.parametrize("name", list(distributions()))
def test_a_single_group_is_within_one_percent(name: str) -> None:
    durations = distributions()[name]
    sketch = Sketch.of(durations)
    assert sketch.count == len(durations)
    assert_close(sketch, durations)


@pytest.mark.parametrize("name", list(distributions()))
def test_a_sketch_merged_from_many_stored_parts_is_within_one_percent(name: str) -> None:
    durations = distributions()[name]
    rng = random.Random(name)
    shuffled = durations[:]
    rng.shuffle(shuffled)
    parts = [shuffled[i : i + 137] for i in range(0, len(shuffled), 137)]  # ~146 uneven parts
    merged = Sketch()
    for part in parts:
        merged.merge(Sketch.from_json(Sketch.of(part).to_json()))  # through the stored text
    assert merged == Sketch.of(durations)
    assert merged.count == len(durations)
    assert_close(merged, durations)
    # Merged from the texts at once (as rollups are read): the same sketch.
    assert Sketch.from_texts(Sketch.of(part).to_json() for part in parts) == merged


def test_bucket_values_are_within_alpha_of_every_duration_in_them() -> None:
    for duration in [1, 2, 3, 10, 999, 1_000_001, 123_456_789, 10**12, 2**62]:
        value = bucket_value(bucket_key(duration))
        assert abs(value - duration) / duration <= ALPHA * (1 + 1e-9), duration
    assert bucket_key(0) == bucket_key(-5) == ZERO_KEY
    assert bucket_value(ZERO_KEY) == 0.0


def test_the_quantile_is_clamped_to_the_groups_minimum_and_maximum() -> None:
    sketch = Sketch.of([1_000_000, 1_000_000, 1_000_001])
    assert bucket_value(bucket_key(1_000_000)) != 1_000_000
    assert sketch.quantile(50, 1_000_000, 1_000_001) in (1_000_000, 1_000_001)
    assert sketch.quantile(100, 1_000_000, 1_000_001) <= 1_000_001
    assert Sketch.of([7]).quantile(99, 7, 7) == 7
    assert Sketch().quantile(95, 0, 0) == 0


def test_nearest_rank_matches_the_raw_walk() -> None:
    # 10 values: p95 is the 10th, p90 the 9th, p50 the 5th (as analytics' raw percentiles).
    durations = [10**6 * (i + 1) for i in range(10)]
    sketch = Sketch.of(durations)
    for percent, rank in [(95, 10), (91, 10), (90, 9), (50, 5), (41, 5), (40, 4), (1, 1)]:
        want = durations[rank - 1]
        assert abs(sketch.quantile(percent, 10**6, 10**7) - want) <= want * ALPHA, percent


def test_the_stored_text_round_trips_and_refuses_what_is_not_a_sketch() -> None:
    sketch = Sketch.of([0, 5, 5, 10**9])
    text = sketch.to_json()
    assert " " not in text and text.startswith('{"-1":1,')
    assert Sketch.from_json(text) == sketch
    with pytest.raises(ValueError, match="JSON object"):
        Sketch.from_json("[1, 2]")
    with pytest.raises(ValueError, match="integer keys"):
        Sketch.from_json('{"a": 1}')


def test_texts_merged_at_once_read_each_key_as_an_integer_and_refuse_what_is_not_a_sketch() -> None:
    assert Sketch.from_texts([]) == Sketch()
    # One integer written two ways (not by `to_json`, but a store edited by hand): one key.
    assert Sketch.from_texts(['{"5": 2, "-1": 1}', '{"05": 3}', b'{"5": 1}']) == Sketch({5: 6, -1: 1})
    with pytest.raises(ValueError, match="JSON object"):
        Sketch.from_texts(['{"5": 1}', "[1, 2]"])
    with pytest.raises(ValueError, match="integer keys"):
        Sketch.from_texts(['{"5": 1}', '{"a": 1}'])
    with pytest.raises(ValueError, match="JSON object"):
        Sketch.from_texts(['{"5": 1}', "nonsense"])
    for texts in (['{"5": "many"}'], ['{"5": 1}', '{"5": "many"}'], ['{"5": 1}', '{"5": null}']):
        with pytest.raises(ValueError, match="integer keys"):
            Sketch.from_texts(texts)
