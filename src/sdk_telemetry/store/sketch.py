"""A mergeable duration distribution (DDSketch-style): percentiles within 1 % over any union of rollups.

A duration d (integer ns) is counted in bucket `ceil(log(d) / log(GAMMA))`, or `ZERO_KEY` when
d <= 0; every value in a bucket lies within `ALPHA` (relative) of the bucket's value, so the
nearest-rank percentile read from the buckets is within `ALPHA` of the exact one. Sketches merge
by adding counts, so that hour rollups sum to days, and days to any range. The ClickHouse
rollups compute the same keys (`toInt32(ceil(log(Duration) / log(GAMMA)))`), bucket for bucket.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import orjson

#: Relative accuracy of a bucket's value (half the 1 % the percentiles must meet).
ALPHA = 0.005
GAMMA = (1 + ALPHA) / (1 - ALPHA)
LOG_GAMMA = math.log(GAMMA)
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SORT_KEYS
#: The bucket of durations <= 0 (its value is 0).
ZERO_KEY = -1


def bucket_key(duration: int) -> int:
    """The bucket a duration (ns) is counted in."""
    if duration <= 0:
        return ZERO_KEY
    return math.ceil(math.log(duration) / LOG_GAMMA)


def bucket_value(key: int) -> float:
    """The value (ns) a bucket stands for: within `ALPHA` of every duration counted in it."""
    if key == ZERO_KEY:
        return 0.0
    return 2 * GAMMA**key / (GAMMA + 1)


def nearest_rank(count: int, percent: int) -> int:
    """The 1-based rank of the `percent`-th percentile of `count` values: ceil(count p / 100), at least 1."""
    return max(1, -(-count * percent // 100))


_NOT_INTEGERS = "a duration sketch maps integer keys to integer counts"


class _NotAnObject(ValueError):
    pass


def _object(text: str | bytes) -> dict[str, int]:
    """The JSON object a stored sketch is (not checked further); ValueError for anything else."""
    try:
        loaded = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise _NotAnObject("a duration sketch is a JSON object, not text that is not JSON") from None
    if not isinstance(loaded, dict):
        raise _NotAnObject(f"a duration sketch is a JSON object, not {type(loaded).__name__}")
    return loaded


class Sketch:
    """Counts of stored calls per duration bucket."""

    __slots__ = ("counts",)

    def __init__(self, counts: Mapping[int, int] | None = None) -> None:
        self.counts: dict[int, int] = dict(counts) if counts else {}

    @classmethod
    def of(cls, durations: Iterable[int]) -> Sketch:
        """A sketch of `durations` (ns)."""
        sketch = cls()
        sketch.add(durations)
        return sketch

    def add(self, durations: Iterable[int]) -> None:
        """Count each duration (ns) once."""
        counts, log, log_gamma = self.counts, math.log, LOG_GAMMA
        for duration in durations:
            key = math.ceil(log(duration) / log_gamma) if duration > 0 else ZERO_KEY
            counts[key] = counts.get(key, 0) + 1

    def merge(self, other: Sketch) -> None:
        """Add `other`'s counts to this sketch."""
        counts = self.counts
        for key, count in other.counts.items():
            counts[key] = counts.get(key, 0) + count

    @property
    def count(self) -> int:
        """The durations counted."""
        return sum(self.counts.values())

    def quantile(self, percent: int, minimum: int, maximum: int) -> int:
        """The `percent`-th percentile (ns) by nearest rank, clamped to the group's [`minimum`,
        `maximum`] (exact values kept beside the sketch); `minimum` when the sketch is empty."""
        total = self.count
        if not total:
            return minimum
        rank = nearest_rank(total, percent)
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return min(maximum, max(minimum, round(bucket_value(key))))
        return maximum  # not reached: the counts sum to `total` >= `rank`

    def to_json(self) -> str:
        """Compact JSON text, `{"key": count, ...}` (keys in text order, so that equal sketches are
        equal text), as stored in SQLite."""
        return orjson.dumps(self.counts, option=_JSON_OPTIONS).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Sketch:
        """The sketch `to_json` wrote; raises ValueError for anything else."""
        loaded = _object(text)
        try:
            return cls(dict(zip(map(int, loaded), map(int, loaded.values()), strict=True)))
        except (TypeError, ValueError):
            raise ValueError(_NOT_INTEGERS) from None

    @classmethod
    def from_texts(cls, texts: Iterable[str | bytes]) -> Sketch:
        """The merged sketch of many `to_json` texts; raises ValueError for anything else.

        The texts' counts are summed by each key's text (as `to_json` writes a key, one integer has
        one text) and the keys read as integers once, at the end: for rollups read by the thousand,
        reading every key of every text as an integer costs more than the sums."""
        total: dict[str, int] = {}
        get = total.get
        try:
            for text in texts:
                loaded = _object(text)
                if not total:
                    total.update(loaded)
                    continue
                for key, count in loaded.items():
                    total[key] = get(key, 0) + count
            counts: dict[int, int] = {}
            for key, count in total.items():
                number = int(key)
                counts[number] = counts.get(number, 0) + int(count)
        except TypeError:  # a count that is not a number
            raise ValueError(_NOT_INTEGERS) from None
        except ValueError as error:
            raise ValueError(str(error) if isinstance(error, _NotAnObject) else _NOT_INTEGERS) from None
        return cls(counts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sketch) and self.counts == other.counts

    def __repr__(self) -> str:
        return f"Sketch({self.counts!r})"

    __hash__ = None  # type: ignore[assignment]  # mutable
