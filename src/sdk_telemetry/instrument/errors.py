"""What sdk-telemetry records of an exception: its type, an error id, the HTTP status it carries
and the SDK's own error code.

The status and the code are read without running the host's code: only values stored on the
exception (its `__dict__` or slots, or plain class attributes), never a property, a `__getattr__`
or anything that could raise or make a request.
"""

from __future__ import annotations

import inspect
import sys
import threading
import types
import uuid
from collections import OrderedDict
from typing import Any

from opentelemetry.semconv.attributes.http_attributes import HTTP_RESPONSE_STATUS_CODE

#: The span attribute of the HTTP status an exception carries.
HTTP_STATUS = HTTP_RESPONSE_STATUS_CODE
_ID_ATTRIBUTE = "__sdk_telemetry_error_id__"
#: Where SDKs keep their own error code: openai and stripe `code`, anthropic `error_code`; OSError `errno`.
_CODE_ATTRIBUTES = ("code", "error_code", "errno")
#: Where they keep the HTTP status: openai, anthropic `status_code`; stripe `http_status`.
_STATUS_ATTRIBUTES = ("status_code", "http_status")
_MISSING = object()
# Descriptors implemented in C that only read a stored value (slots, BaseException's fields).
_STORED = (types.MemberDescriptorType, types.GetSetDescriptorType)
# Exceptions that refuse new attributes (__slots__) keep their id here, most recent last.
_fallback_ids: OrderedDict[int, tuple[BaseException, str]] = OrderedDict()
_fallback_lock = threading.Lock()
_FALLBACK_LIMIT = 512


def error_type(exc: BaseException) -> str:
    """The exception's class as `module.QualName` (`QualName` alone for builtins)."""
    cls = type(exc)
    module = cls.__module__
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


def http_status(exc: BaseException) -> int | None:
    """The HTTP status of the response the exception carries: its `status_code` or `http_status`,
    else its `response`'s `status_code` (`httpx`/`httpx2`, `requests`), else urllib's `code`."""
    try:
        for name in _STATUS_ATTRIBUTES:
            status = _status(_stored(exc, name))
            if status is not None:
                return status
        response = _stored(exc, "response")
        if response is not _MISSING and response is not None:
            status = _status(_stored(response, "status_code"))
            if status is not None:
                return status
        urllib_error = sys.modules.get("urllib.error")  # not imported: the exception is none of its
        if urllib_error is not None and isinstance(exc, urllib_error.HTTPError):
            return _status(_stored(exc, "code"))
    except Exception:  # an object that refuses even a static look
        return None
    return None


def error_code(exc: BaseException, status: int | None = None) -> str | None:
    """The SDK's own code for the error (`code`, `error_code`, `errno`, else the `code` or `type`
    of the `error` in its `body`, as anthropic sends it), if any; never the HTTP `status`."""
    try:
        for name in _CODE_ATTRIBUTES:
            code = _code(_stored(exc, name), status)
            if code is not None:
                return code
        body = _stored(exc, "body")  # (openai keeps the `error` object of the body there, anthropic all of it)
        error = body.get("error", body) if type(body) is dict else None  # a plain dict: no host code runs
        if type(error) is dict:
            for key in ("code", "type"):
                code = _code(error.get(key), status)
                if code is not None:
                    return code
    except Exception:  # an object that refuses even a static look
        return None
    return None


def _stored(obj: Any, name: str) -> Any:
    """`obj.name` when it is a stored value (instance dict, slot, plain class attribute), else
    `_MISSING`; never raises."""
    try:
        try:
            instance = object.__getattribute__(obj, "__dict__")
        except AttributeError:  # no instance dict (slots only)
            instance = None
        if type(instance) is dict and name in instance:
            return instance[name]
        found = inspect.getattr_static(obj, name, _MISSING)
        if found is _MISSING:
            return _MISSING
        if isinstance(found, _STORED):
            return found.__get__(obj, type(obj))
        if hasattr(type(found), "__get__"):  # a property, a method, any other descriptor: not read
            return _MISSING
        return found
    except Exception:  # an object that refuses even a static look (or an empty slot)
        return _MISSING


def _status(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599:
        return value
    return None


def _code(value: object, status: int | None) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        return None
    if status is not None and (value == status or value == str(status)):
        return None  # the HTTP status under another name: recorded as the status
    return str(value)


def claim_error_id(exc: BaseException) -> tuple[str, bool]:
    """The exception's error id, and whether an inner instrumented call already recorded it.

    The first call for an exception object creates the id; later calls (the same exception
    passing up through outer instrumented layers) get the same id and `True`.
    """
    existing = _stored(exc, _ID_ATTRIBUTE)
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
