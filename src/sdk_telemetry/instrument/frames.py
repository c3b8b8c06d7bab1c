"""The frames an instrumented call adds to the stack, and how SDK code looks past them.

An instrumented method runs one frame deeper than it would plain (sdk-telemetry's call path sits
between the caller and the method; wrapt's own layer is C code and adds none, unless wrapt's
extension is disabled). `warnings.warn(..., stacklevel=2)` or `logger.warning(..., stacklevel=2)`
inside an SDK method then names that frame instead of the user's line. SDK code can count past it:

    warnings.warn("use create()", DeprecationWarning, stacklevel=sdk_telemetry.stacklevel(2))
    sdk_telemetry.warn("use create()", DeprecationWarning, stacklevel=2)
    # Python 3.12+: warnings.warn(..., stacklevel=2, skip_file_prefixes=sdk_telemetry.WRAPPER_PATHS)

A traceback still shows the frame; pytest hides it from its failure reports.
"""

from __future__ import annotations

import os
import sys
import warnings
from types import FrameType

import wrapt

#: Where the frames of sdk-telemetry's call path (and of wrapt's pure-Python fallback) come from:
#: `skip_file_prefixes` for `warnings.warn` on Python 3.12 and later.
WRAPPER_PATHS: tuple[str, ...] = (
    os.path.dirname(os.path.abspath(__file__)) + os.sep,
    os.path.dirname(os.path.abspath(wrapt.__file__)) + os.sep,
)


def _is_wrapper(frame: FrameType) -> bool:
    return frame.f_code.co_filename.startswith(WRAPPER_PATHS)


def _raw_level(frame: FrameType | None, level: int) -> int:
    """The `stacklevel` that reaches the `level`-th frame above `frame` (which is level 1), not
    counting sdk-telemetry's frames on the way."""
    raw = counted = 1
    while counted < level and frame is not None:
        frame = frame.f_back
        raw += 1
        if frame is not None and not _is_wrapper(frame):
            counted += 1
    return raw


def stacklevel(level: int = 2) -> int:
    """The `stacklevel` to pass to `warnings.warn` or `logging` from the calling function so that
    it names the same frame as `level` would without instrumentation."""
    return _raw_level(sys._getframe(1), level)


def warn(message: str | Warning, category: type[Warning] | None = None, stacklevel: int = 1) -> None:
    """`warnings.warn`, with `stacklevel` counted as if the calling method were not instrumented."""
    warnings.warn(message, category, _raw_level(sys._getframe(1), stacklevel) + 1)
