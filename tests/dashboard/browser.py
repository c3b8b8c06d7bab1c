"""Headless Chromium driven through the DevTools protocol over a pipe (`--remote-debugging-pipe`):
open a page at a window size, wait for it, read the DOM, click, take screenshots, and measure a
screenshot's pixels (decoded by the browser itself, so no imaging library is needed)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

#: Headless, offline and quiet: every run of chromium in the tests.
HEADLESS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
FLAGS = [*HEADLESS, "--remote-debugging-pipe"]

#: What `Browser.pixels()` measures: distinct colours (of a sample), the share of the commonest colour,
#: and a coarse 8 x 8 grid of mean brightness (to tell two pictures apart).
_PIXELS = """
async (data) => {
  const image = new Image();
  image.src = "data:image/png;base64," + data;
  await image.decode();
  const canvas = new OffscreenCanvas(image.width, image.height);
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, image.width, image.height).data;
  const counts = new Map();
  const grid = new Array(64).fill(0), cells = new Array(64).fill(0);
  for (let y = 0; y < image.height; y += 3) {
    for (let x = 0; x < image.width; x += 3) {
      const i = (y * image.width + x) * 4;
      const key = (pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2];
      counts.set(key, (counts.get(key) || 0) + 1);
      const cell = Math.floor((y * 8) / image.height) * 8 + Math.floor((x * 8) / image.width);
      grid[cell] += (pixels[i] + pixels[i + 1] + pixels[i + 2]) / 3;
      cells[cell] += 1;
    }
  }
  let total = 0, top = 0;
  for (const n of counts.values()) { total += n; top = Math.max(top, n); }
  return {width: image.width, height: image.height, colours: counts.size, top_share: top / total,
          grid: grid.map((v, i) => Math.round(v / Math.max(1, cells[i])))};
}
"""


class BrowserError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


class Browser:
    """One headless Chromium and one page in it."""

    def __init__(self, profile: Path) -> None:
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()
        # The protocol is read from fd 3 and written to fd 4: the shell puts the pipes there.
        script = f'exec "$0" "$@" 3<&{commands_read} 4>&{replies_write} {commands_read}<&- {replies_write}>&-'
        self.process = subprocess.Popen(
            ["bash", "-c", script, CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            pass_fds=(commands_read, replies_write),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        os.close(commands_read)
        os.close(replies_write)
        self._next = 0
        self._buffer = b""
        self._lock = threading.Lock()
        self.session = ""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        """Send one command (to the page once attached) and wait for its answer."""
        with self._lock:
            self._next += 1
            ident = self._next
            message: dict[str, Any] = {"id": ident, "method": method, "params": params}
            if self.session and not method.startswith("Target."):
                message["sessionId"] = self.session
            os.write(self._commands, json.dumps(message).encode() + b"\0")
            deadline = time.monotonic() + timeout
            while True:
                while b"\0" in self._buffer:
                    raw, self._buffer = self._buffer.split(b"\0", 1)
                    reply = json.loads(raw)
                    if reply.get("id") == ident:
                        if "error" in reply:
                            raise BrowserError(f"{method}: {reply['error']}")
                        return dict(reply.get("result", {}))
                if time.monotonic() > deadline:
                    raise BrowserError(f"{method}: no answer in {timeout} s")
                chunk = os.read(self._replies, 1 << 20)
                if not chunk:
                    raise BrowserError(f"{method}: the browser closed ({self._stderr()})")
                self._buffer += chunk

    def _stderr(self) -> str:
        self.process.kill()
        return (self.process.stderr.read() if self.process.stderr else b"").decode(errors="replace")[-2000:]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        """Poll `expression` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression}")
            time.sleep(0.05)

    def open(self, url: str, width: int = 1400, height: int = 1000) -> None:
        """Load `url` in a window of `width` x `height` CSS pixels and wait until the page says it is ready."""
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url="about:blank")  # a new load, even when only the #fragment differs
        self.wait_for("location.href === 'about:blank' && document.readyState === 'complete'")
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && document.body && document.body.dataset.ready === 'true'")

    def settle(self) -> None:
        """Wait for the page's next render after a click (ready again, and not mid-load)."""
        time.sleep(0.05)
        self.wait_for("document.body.dataset.ready === 'true'")
        time.sleep(0.15)

    def click(self, selector: str) -> None:
        """Click the first element matching `selector` (a real mouse click at its centre)."""
        box = self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return [r.left + r.width / 2, r.top + r.height / 2]; })()"
        )
        if box is None:
            raise BrowserError(f"nothing matches {selector}")
        self.evaluate("document.body.dataset.ready = 'false'")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)
        self.settle()

    def texts(self, selector: str) -> list[str]:
        """The text of every element matching `selector`."""
        return list(
            self.evaluate(f"[...document.querySelectorAll({json.dumps(selector)})].map((e) => e.textContent.trim())")
        )

    def screenshot(self, path: Path, full_page: bool = False) -> bytes:
        """A PNG of the window (or the whole page), written to `path`."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.evaluate("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(
                captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1}
            )
        data = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        path.write_bytes(data)
        return data

    def pixels(self, png: bytes) -> dict[str, Any]:
        """Measures of a PNG, decoded by the browser: size, distinct colours, commonest colour's share, 8 x 8 grid."""
        encoded = json.dumps(base64.b64encode(png).decode())
        return dict(self.evaluate(f"({_PIXELS})({encoded})"))

    def close(self) -> None:
        """End the browser."""
        with contextlib.suppress(OSError):
            os.close(self._commands)
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        os.close(self._replies)
