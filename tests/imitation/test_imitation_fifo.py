"""FIFO view cache: capacity, oldest-out replacement, fresh-view probability, checkpoint state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from san.imitation.fifo import FeatureFIFO, ViewEntry, draw_view


def entry(tag: int, cache_index: int = -1) -> ViewEntry:
    return ViewEntry(
        torch.eye(4) * tag, torch.eye(3), 8, 6, [torch.full((2, 3, 3), float(tag)).half()], False, cache_index
    )


def test_capacity_and_oldest_replaced():
    fifo = FeatureFIFO(3)
    for k in range(3):
        assert fifo.push(entry(k)) is None
    assert fifo.full and len(fifo) == 3
    evicted = fifo.push(entry(3))
    assert evicted is not None and float(evicted.c2w[0, 0]) == 0  # the oldest went
    assert [float(e.c2w[0, 0]) for e in fifo] == [1, 2, 3]
    fifo.push(entry(4))
    assert [float(e.c2w[0, 0]) for e in fifo] == [2, 3, 4] and len(fifo) == 3


@pytest.mark.parametrize("fraction, expected", [(0.0, 0), (1.0, 200)])
def test_fresh_fraction_extremes(fraction, expected):
    fifo = FeatureFIFO(4)
    for k in range(4):
        fifo.push(entry(k, cache_index=k))
    calls = []

    def make_fresh():
        calls.append(1)
        return entry(100 + len(calls))

    rng = np.random.default_rng(0)
    fresh_flags = [draw_view(fifo, fraction, rng, make_fresh)[1] for _ in range(200)]
    assert len(calls) == expected == sum(fresh_flags)
    if fraction == 1.0:  # every view is new; the cache holds the newest four
        assert [float(e.c2w[0, 0]) for e in fifo] == [297, 298, 299, 300]


def test_quarter_fraction_and_empty_cache():
    fifo = FeatureFIFO(8)
    rng = np.random.default_rng(1)
    n = 0

    def make_fresh():
        nonlocal n
        n += 1
        return entry(n)

    first, fresh = draw_view(fifo, 0.25, rng, make_fresh)
    assert fresh and len(fifo) == 1  # an empty cache always renders
    for _ in range(999):
        draw_view(fifo, 0.25, rng, make_fresh)
    assert 200 < n < 300
    with pytest.raises(RuntimeError, match="fresh_fraction is 0"):
        draw_view(FeatureFIFO(2), 0.0, rng, make_fresh)


def test_state_dict_references_cached_rows_and_keeps_fresh_tensors():
    fifo = FeatureFIFO(3)
    fifo.push(entry(1, cache_index=7))
    fifo.push(entry(2))
    state = fifo.state_dict()
    assert state["entries"][0] == {"cache_index": 7}
    loaded = []
    restored = FeatureFIFO(1)
    restored.load_state_dict(state, lambda i: loaded.append(i) or entry(1, cache_index=i))
    assert loaded == [7] and restored.capacity == 3 and len(restored) == 2
    assert torch.equal(restored[1].features[0], fifo[1].features[0])
