"""The demo SDK's files resource."""

from __future__ import annotations


class Files:
    def upload(self, path: str) -> str:
        return f"file-{len(path)}"
