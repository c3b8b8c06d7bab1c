"""The disk spool: batches that could not be delivered, kept on disk until the endpoint answers again.

One file per batch, written to a temporary name, fsynced, then renamed into place, so that a
reader sees whole files only and a `kill -9` loses nothing that was written. A sender claims a
file by renaming it (atomic on one file system), so that processes sharing a directory never
send the same batch at the same time; a claim whose process died is given back. The directory
is bounded by size (a batch that does not fit is dropped and counted) and by age (older files
are deleted and counted). A file that cannot be read back is moved to `corrupt/` and counted.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from sdk_telemetry_exporters.fork import reinit_after_fork

_logger = logging.getLogger(__name__)

FORMAT = 1
_PENDING = ".batch"
_CLAIMED = ".claim"
_TEMPORARY = ".tmp"
#: A temporary file this old belongs to a writer that died mid-write.
STALE_TEMPORARY = 600.0


def spool_name(exporter: str, base_url: str, headers: Mapping[str, str] | None = None) -> str:
    """The sub-directory of one exporter, endpoint and set of headers (API key included, as a hash only).

    Batches are only ever resent where, and with the credentials with which, they were bound.
    """
    identity = "\n".join([base_url, *(f"{key.lower()}:{value}" for key, value in sorted((headers or {}).items()))])
    return f"{exporter}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"


@dataclass(frozen=True)
class WireBatch:
    """A batch in its wire form: the JSON items and how they become a request body.

    `single`: the body is the one item (e.g. Composio's `/errors`). `envelope` and `field`: the
    body is the envelope with the items under `field` (e.g. Tinker's `events`). Otherwise the body
    is the JSON array of items.
    """

    path: str
    items: tuple[Any, ...]
    single: bool = False
    envelope: dict[str, Any] | None = None
    field: str | None = None
    #: When the batch was first spooled (epoch seconds); 0 until then.
    created: float = 0.0

    def body(self) -> bytes:
        """The request body, the same bytes every time (so that its idempotency key is stable)."""
        if self.single:
            return orjson.dumps(self.items[0])
        if self.envelope is not None and self.field:
            return orjson.dumps({**self.envelope, self.field: list(self.items)})
        return orjson.dumps(list(self.items))

    def split(self) -> tuple[WireBatch, WireBatch]:
        """Two halves of a batch of at least two items."""
        middle = len(self.items) // 2
        return replace(self, items=self.items[:middle]), replace(self, items=self.items[middle:])

    def to_record(self) -> bytes:
        """The spool file's content."""
        record: dict[str, Any] = {"format": FORMAT, "path": self.path, "items": list(self.items)}
        record["created"] = self.created or time.time()
        if self.single:
            record["single"] = True
        if self.envelope is not None:
            record["envelope"] = self.envelope
            record["field"] = self.field
        return orjson.dumps(record)

    @classmethod
    def from_record(cls, data: bytes) -> WireBatch:
        """Read a spool file's content back; raises `ValueError` when it is not a whole, valid record."""
        record = orjson.loads(data)
        if not isinstance(record, dict) or record.get("format") != FORMAT:
            raise ValueError("not a spool record of a known format")
        path, items = record.get("path"), record.get("items")
        if not isinstance(path, str) or not isinstance(items, list) or not items:
            raise ValueError("a spool record needs a path and a non-empty list of items")
        envelope = record.get("envelope")
        if envelope is not None and not isinstance(envelope, dict):
            raise ValueError("a spool record's envelope must be an object")
        return cls(
            path=path,
            items=tuple(items),
            single=bool(record.get("single")),
            envelope=envelope,
            field=record.get("field"),
            created=float(record.get("created") or 0.0),
        )


@dataclass
class Claim:
    """A spool file this process is sending; give it back with `Spool.done` or `Spool.release`."""

    path: Path
    batch: WireBatch
    size: int = field(default=0)


class Spool:
    """A directory of undelivered batches, bounded by size and age, shared safely between processes."""

    def __init__(self, directory: Path, max_bytes: int = 50 * 1024 * 1024, max_age: float = 48 * 3600.0) -> None:
        self.directory = Path(directory)
        self.max_bytes = max(0, max_bytes)
        self.max_age = max_age
        self.counts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._ready = False
        reinit_after_fork(self, Spool._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self.counts = collections.Counter()

    # --- writing ---------------------------------------------------------------------------

    def put(self, batch: WireBatch) -> bool:
        """Write `batch` durably; False (and counted) when it does not fit or cannot be written."""
        items = len(batch.items)
        try:
            data = (batch if batch.created else replace(batch, created=time.time())).to_record()
            self._prepare()
            if self._pending_bytes() + len(data) > self.max_bytes:
                self._count("dropped_spool_full", items)
                _logger.warning("sdk-telemetry: spool %s is full; %d item(s) dropped", self.directory, items)
                return False
            name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            temporary = self.directory / (name + _TEMPORARY)
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.directory / (name + _PENDING))
            _fsync_directory(self.directory)
        except Exception as exc:  # a full disk or a read-only directory: counted, never raised
            self._count("dropped_spool_error", items)
            self._note_error(f"spool write failed: {type(exc).__name__}: {exc}")
            return False
        self._count("spooled", items)
        self._count("spooled_batches")
        return True

    # --- reading ---------------------------------------------------------------------------

    def claim(self) -> Claim | None:
        """Take the oldest pending batch for sending, or None when there is none (or the spool is unreadable)."""
        try:
            if not self.directory.is_dir():
                return None  # nothing was ever spooled here; do not create the directory just to look
            self._expire_and_recover()
            for path in self._pending():
                claimed = path.with_name(f"{path.stem}.{os.getpid()}{_CLAIMED}")
                try:
                    os.rename(path, claimed)  # atomic: only one process wins
                except FileNotFoundError:
                    continue  # another process took it first
                try:
                    data = claimed.read_bytes()
                    return Claim(claimed, WireBatch.from_record(data), len(data))
                except (OSError, ValueError) as exc:
                    self._set_aside(claimed, exc)
        except Exception as exc:
            self._note_error(f"spool read failed: {type(exc).__name__}: {exc}")
        return None

    def done(self, claim: Claim, delivered: int | None = None) -> None:
        """The claimed batch is delivered (or refused for good): remove its file."""
        if delivered:  # counted first: whoever sees the spool emptied sees the count too
            self._count("resent", delivered)
            self._count("resent_batches")
        with contextlib.suppress(OSError):
            claim.path.unlink()

    def replace_with(self, claim: Claim, remaining: Sequence[WireBatch], delivered: int = 0) -> None:
        """Part of the claimed batch went: write the `remaining` parts back as pending, then remove the claim."""
        for batch in remaining:
            self._write_back(batch)
        self.done(claim, delivered)

    def release(self, claim: Claim) -> None:
        """The claimed batch could not be sent now: give it back to the pending files."""
        pending = claim.path.with_name(claim.path.name.split(".", 1)[0] + _PENDING)
        try:
            os.rename(claim.path, pending)
        except OSError as exc:
            self._note_error(f"spool release failed: {type(exc).__name__}: {exc}")

    def drop(self, claim: Claim, reason: str) -> None:
        """The claimed batch will never be accepted (a final refusal): remove it and count its items."""
        self._count(f"dropped_{reason}", len(claim.batch.items))
        with contextlib.suppress(OSError):
            claim.path.unlink()

    # --- state -----------------------------------------------------------------------------

    def pending_count(self) -> int:
        """Pending batch files now on disk."""
        try:
            return sum(1 for _ in self._pending())
        except OSError:
            return 0

    def stats(self) -> dict[str, Any]:
        """Counters (spooled, resent, corrupt, dropped by reason, errors) and the pending files."""
        with self._lock:
            result: dict[str, Any] = dict(self.counts)
        result["pending_batches"] = self.pending_count()
        result["directory"] = str(self.directory)
        return result

    # --- internals -------------------------------------------------------------------------

    def _prepare(self) -> None:
        if not self._ready:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._ready = True

    def _pending(self) -> Iterator[Path]:
        if not self.directory.is_dir():
            return iter(())
        return iter(sorted(self.directory.glob("*" + _PENDING)))

    def _pending_bytes(self) -> int:
        total = 0
        for path in self.directory.iterdir():
            if path.suffix in (_PENDING, _CLAIMED):
                with contextlib.suppress(OSError):
                    total += path.stat().st_size
        return total

    def _write_back(self, batch: WireBatch) -> None:
        """Re-spool part of a claimed batch without counting it as newly spooled."""
        try:
            name = f"{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            temporary = self.directory / (name + _TEMPORARY)
            with open(temporary, "wb") as handle:
                handle.write(batch.to_record())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.directory / (name + _PENDING))
        except Exception as exc:
            self._count("dropped_spool_error", len(batch.items))
            self._note_error(f"spool write failed: {type(exc).__name__}: {exc}")

    def _expire_and_recover(self) -> None:
        """Delete batches older than the age bound; give back claims of dead processes; clear dead temporaries."""
        now = time.time()
        for path in list(self.directory.iterdir()):
            name = path.name
            try:
                if name.endswith(_CLAIMED):
                    owner = int(name[: -len(_CLAIMED)].rsplit(".", 1)[1])
                    if owner != os.getpid() and not _alive(owner):
                        os.rename(path, path.with_name(name.split(".", 1)[0] + _PENDING))
                        self._count("recovered_claims")
                elif name.endswith(_TEMPORARY) and now - path.stat().st_mtime > STALE_TEMPORARY:
                    path.unlink()
                elif name.endswith(_PENDING) and now - int(name.split("-", 1)[0]) / 1e9 > self.max_age:
                    items = self._items_in(path)
                    path.unlink()
                    self._count("dropped_spool_expired", items)
            except (OSError, ValueError, IndexError):
                continue

    def _items_in(self, path: Path) -> int:
        try:
            return len(WireBatch.from_record(path.read_bytes()).items)
        except (OSError, ValueError):
            return 0

    def _set_aside(self, path: Path, exc: BaseException) -> None:
        corrupt = self.directory / "corrupt"
        try:
            corrupt.mkdir(exist_ok=True)
            os.replace(path, corrupt / path.name.split(".", 1)[0])
        except OSError:
            with contextlib.suppress(OSError):
                path.unlink()
        self._count("corrupt")
        self._note_error(f"corrupt spool file {path.name} set aside: {type(exc).__name__}: {exc}")

    def count(self, key: str, n: int = 1) -> None:
        """Add `n` to counter `key` (thread-safe)."""
        self._count(key, n)

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.counts[key] += n

    def _note_error(self, message: str) -> None:
        with self._lock:
            self.counts["errors"] += 1
            self.last_error = message
            self.last_error_time = time.time()
        _logger.warning("sdk-telemetry: %s", message)

    last_error: str | None = None
    last_error_time: float | None = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
