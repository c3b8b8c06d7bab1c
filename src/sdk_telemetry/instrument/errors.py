"""What sdk-telemetry records of an exception: its type, an error id and an error code."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict

_ID_ATTRIBUTE = "__sdk_telemetry_error_id__"
_CODE_ATTRIBUTES = ("code", "error_code", "status_code", "errno")
# Exceptions that refuse new attributes (__slots__) keep their id here, most recent last.
_fallback_ids: OrderedDict[int, tuple[BaseException, str]] = OrderedDict()
_fallback_lock = threading.Lock()
_FALLBACK_LIMIT = 512


def error_type(exc: BaseException) -> str:
    """The exception's class as `module.QualName` (`QualName` alone for builtins)."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


def error_code(exc: BaseException) -> str | None:
    """The code the exception carries (`code`, `error_code`, `status_code` or `errno`), if any."""
    for name in _CODE_ATTRIBUTES:
        value = getattr(exc, name, None)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
            return str(value)
    return None


def claim_error_id(exc: BaseException) -> tuple[str, bool]:
    """The exception's error id, and whether an inner instrumented call already recorded it.

    The first call for an exception object creates the id; later calls (the same exception
    passing up through outer instrumented layers) get the same id and `True`.
    """
    existing = getattr(exc, _ID_ATTRIBUTE, None)
    if isinstance(existing, str):
        return existing, True
    new_id = uuid.uuid4().hex
    try:
        setattr(exc, _ID_ATTRIBUTE, new_id)
        return new_id, False
    except (AttributeError, TypeError):
        pass
    with _fallback_lock:
        entry = _fallback_ids.get(id(exc))
        if entry is not None and entry[0] is exc:
            return entry[1], True
        _fallback_ids[id(exc)] = (exc, new_id)
        while len(_fallback_ids) > _FALLBACK_LIMIT:
            _fallback_ids.popitem(last=False)
    return new_id, False
