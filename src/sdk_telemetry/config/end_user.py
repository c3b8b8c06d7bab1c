"""Who the end user is: `with sdk_telemetry.user("u-42"):` scopes a user id to the calls and events
inside it (a `ContextVar`, so it follows threads' own contexts and asyncio tasks); the process-wide
one is the resource attribute set by `configure_telemetry(user_id=...)` / `SDK_TELEMETRY_USER_ID`."""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType

#: The OpenTelemetry semantic-convention attribute for the end user's id.
ENDUSER_ID = "enduser.id"
#: The longest user id accepted.
MAX_USER_ID = 256

#: The user of the current context, or None (then the resource attribute, if any, names the user).
current_user: ContextVar[str | None] = ContextVar("sdk_telemetry.user", default=None)


def checked_user_id(user_id: object, name: str = "user_id") -> str:
    """`user_id` when it is a non-empty string of at most `MAX_USER_ID` characters; else `ValueError` naming it."""
    if not isinstance(user_id, str) or not user_id.strip() or len(user_id) > MAX_USER_ID:
        raise ValueError(f"{name} must be a non-empty string of at most {MAX_USER_ID} characters, not {user_id!r}")
    return user_id


class user:
    """A context manager (`with` and `async with`) under which instrumented calls and logged events
    carry `enduser.id = user_id`; nested ones override, and leaving restores the outer user."""

    __slots__ = ("_token", "user_id")

    def __init__(self, user_id: str) -> None:
        self.user_id = checked_user_id(user_id)
        self._token: Token[str | None] | None = None

    def __enter__(self) -> str:
        self._token = current_user.set(self.user_id)
        return self.user_id

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None:
            current_user.reset(self._token)
            self._token = None

    async def __aenter__(self) -> str:
        return self.__enter__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(exc_type, exc, tb)
