"""An instrumented SDK method's warnings and log records can name the user's line: the wrapper's
frame is counted out by `sdk_telemetry.stacklevel` / `sdk_telemetry.warn` / `WRAPPER_PATHS`."""

from __future__ import annotations

import logging
import re
import sys
import warnings

import pytest

import sdk_telemetry
from sdk_telemetry import instrument


class Client:
    def old(self) -> str:
        sdk_telemetry.warn("old() is deprecated", DeprecationWarning, stacklevel=2)
        return "ok"

    def old_raw(self) -> str:
        warnings.warn("old_raw() is deprecated", DeprecationWarning, stacklevel=sdk_telemetry.stacklevel(2))
        return "ok"

    def outer(self) -> str:
        return self.inner()

    def inner(self) -> str:
        sdk_telemetry.warn("inner() is deprecated", DeprecationWarning, stacklevel=3)
        return "ok"

    def logs(self) -> None:
        logging.getLogger("sdk").warning("careful", stacklevel=sdk_telemetry.stacklevel(2))


def _warnings_of(call: object) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()  # type: ignore[operator]
    return caught


def _line() -> int:
    return sys._getframe(1).f_lineno


@pytest.mark.parametrize("instrumented", [False, True])
@pytest.mark.parametrize("method", ["old", "old_raw", "outer"])
def test_a_warning_names_the_callers_line(instrumented: bool, method: str) -> None:
    if instrumented:
        instrument(Client)
        assert sdk_telemetry.is_instrumented(Client.__dict__["old"])
    client = Client()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = _line() + 1
        getattr(client, method)()
    (warning,) = caught
    assert warning.filename == __file__, warning.filename
    assert warning.lineno == line


def test_without_the_helper_the_wrappers_frame_is_named() -> None:
    """What cannot be hidden: a plain `stacklevel=2` counts the wrapper's frame (documented)."""

    class Plain:
        def old(self) -> None:
            warnings.warn("old", DeprecationWarning, stacklevel=2)

    instrument(Plain)
    (warning,) = _warnings_of(Plain().old)
    assert warning.filename.startswith(sdk_telemetry.WRAPPER_PATHS), warning.filename


def test_a_log_record_names_the_callers_line(caplog: pytest.LogCaptureFixture) -> None:
    instrument(Client)
    with caplog.at_level(logging.WARNING, logger="sdk"):
        line = _line() + 1
        Client().logs()
    (record,) = caplog.records
    assert (record.pathname, record.lineno) == (__file__, line)


pytest_plugins = ["pytester"]


def test_pytest_leaves_the_wrappers_frame_out_of_a_failure_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_sdk="""
import asyncio
from sdk_telemetry import instrument


class Client:
    def get(self):
        raise KeyError("missing")

    async def aget(self):
        raise KeyError("missing")

    def items(self):
        yield 1
        raise KeyError("missing")


instrument(Client)


def test_sync():
    Client().get()


def test_async():
    asyncio.run(Client().aget())


def test_generator():
    list(Client().items())
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tb=long")
    result.assert_outcomes(failed=3)
    report = result.stdout.str()
    assert report.count("raise KeyError") == 3
    # pytest's location lines (`path:line: `) name no frame of the call path.
    assert re.search(r"sdk_telemetry/instrument/\w+\.py:\d+: ", report) is None, report
