"""blendfx.threads: the core bound every pool of blendfx's sizes itself by."""

from __future__ import annotations

import os
import threading

import pytest
from blendfx.errors import ParameterError
from blendfx.threads import core_limit, cores


def test_cores_is_the_machines_without_a_limit() -> None:
    assert cores() == len(os.sched_getaffinity(0))


def test_core_limit_nests_and_restores() -> None:
    free = cores()
    with core_limit(1):
        assert cores() == 1
        with core_limit(3):  # the tightest open bound holds
            assert cores() == 1
        assert cores() == 1
    assert cores() == free
    with pytest.raises(RuntimeError), core_limit(1):
        raise RuntimeError("boom")
    assert cores() == free  # closed on error too


def test_core_limit_holds_for_every_thread_while_open() -> None:
    seen: list[int] = []
    with core_limit(1):
        worker = threading.Thread(target=lambda: seen.append(cores()))
        worker.start()
        worker.join()
    assert seen == [1]


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_core_limit_rejects_what_is_not_a_core_count(bad) -> None:
    with pytest.raises(ParameterError, match="positive number of cores"), core_limit(bad):
        pass
