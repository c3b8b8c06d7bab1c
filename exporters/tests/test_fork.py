"""`sdk_telemetry_exporters.fork`: what a forked child re-initialises, and what it never shares."""

from __future__ import annotations

import gc
import os
import weakref

import pytest
from sdk_telemetry_exporters import tinker
from sdk_telemetry_exporters.fork import reinit_after_fork

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    def after_fork(self) -> None:
        self.calls += 1


def in_child(report) -> str:
    """Fork; run `report()` in the child and return what it wrote to the pipe."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report and leave at once, whatever happens
        try:
            os.write(write, report().encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    return text


def test_the_method_runs_in_the_child_only():
    counter = Counter()
    reinit_after_fork(counter, Counter.after_fork)
    assert in_child(lambda: str(counter.calls)) == "1"
    assert counter.calls == 0


def test_the_object_is_held_weakly():
    counter = Counter()
    reinit_after_fork(counter, Counter.after_fork)
    ref = weakref.ref(counter)
    del counter
    gc.collect()
    assert ref() is None, "the fork hook kept the object alive"
    assert in_child(lambda: "ok") == "ok", "a hook whose object is gone does nothing"


def test_a_forked_child_has_its_own_process_uuid():
    parent = tinker.process_uuid()
    child = in_child(tinker.process_uuid)
    assert child and child != parent
    assert tinker.process_uuid() == parent


def test_the_platform_without_fork_registers_nothing(monkeypatch):
    monkeypatch.delattr(os, "register_at_fork")
    reinit_after_fork(Counter(), Counter.after_fork)  # neither an AttributeError nor a hook
