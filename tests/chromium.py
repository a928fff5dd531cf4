"""A tiny Chrome DevTools Protocol client over --remote-debugging-pipe (stdlib
only): open a page in headless Chromium, collect console errors and uncaught
exceptions, evaluate JavaScript, take a screenshot."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe")


def find() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class ProtocolError(RuntimeError):
    pass


class Browser:
    """Chromium reads commands from its fd 3 and writes replies to its fd 4,
    each a JSON message ended by a NUL byte."""

    def __init__(self, executable: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="sandbox-chromium-")
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()
        # Lift the child's ends above 4 so that dup2 onto 3 and 4 cannot clobber one another.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_child, from_child)]
        for fd in (to_child, from_child):
            os.close(fd)

        def pipes() -> None:
            os.dup2(high[0], 3)
            os.dup2(high[1], 4)

        self.process = subprocess.Popen([executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, pass_fds=(3, 4),
                                        preexec_fn=pipes)  # noqa: PLW1509 -- single-threaded tests; only dup2
        for fd in high:
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for fd in (self._write, self._read):
            try:
                os.close(fd)
            except OSError:
                pass
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send a command; return its result, keeping the events that arrive meanwhile."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise ProtocolError(f"{method}: {reply['error']}")
                return reply.get("result", {})  # type: ignore[no-any-return]
            if "method" in reply:
                self.events.append(reply)

    def _receive(self) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or self.process.poll() is not None:
                raise ProtocolError(f"chromium stopped answering (exit {self.process.poll()})")
            if not select.select([self._read], [], [], min(left, 1.0))[0]:
                continue
            chunk = os.read(self._read, 1 << 16)
            if not chunk:
                raise ProtocolError("chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)  # type: ignore[no-any-return]


class Page:
    """One tab of a Browser, attached through a flat session."""

    def __init__(self, browser: Browser, width: int = 1400, height: int = 900) -> None:
        self.browser = browser
        self.target = browser.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = browser.send("Target.attachToTarget", targetId=self.target, flatten=True)["sessionId"]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
            self.send(domain)
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        return self.browser.send(method, self.session, **params)

    def close(self) -> None:
        self.browser.send("Target.closeTarget", targetId=self.target)

    def first_paint(self) -> float:
        """Milliseconds from navigation to the first contentful paint of the page open in this tab."""
        deadline = time.monotonic() + self.browser.timeout
        while True:
            entries = dict(self.evaluate("performance.getEntriesByType('paint').map(e => [e.name, e.startTime])"))
            if "first-contentful-paint" in entries:
                return float(entries["first-contentful-paint"])
            if time.monotonic() > deadline:
                raise ProtocolError("no first-contentful-paint entry")
            time.sleep(0.05)

    def load_time(self) -> float:
        """Milliseconds from navigation to the end of the page's load event (parsed, scripts run)."""
        return float(self.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd"))

    def open(self, path: Path) -> None:
        """Navigate to a file and wait for its load event."""
        self.send("Page.bringToFront")  # a background tab does not paint
        self.send("Page.navigate", url=path.resolve().as_uri())
        deadline = time.monotonic() + self.browser.timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self._events()):
            if time.monotonic() > deadline:
                raise ProtocolError(f"{path}: no load event")
            self.evaluate("1")  # a round trip, so that pending events arrive

    def evaluate(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise ProtocolError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Console errors, failed resource loads and uncaught exceptions so far."""
        found = []
        for event in self._events():
            params = event.get("params", {})
            if event["method"] == "Runtime.exceptionThrown":
                found.append(str(params.get("exceptionDetails")))
            elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(str(params.get("args")))
            elif event["method"] == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(str(params["entry"].get("text")))
        return found

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self._events() if e["method"] == "Network.requestWillBeSent"]

    def screenshot(self, path: Path, top: int = 0, height: int | None = None) -> None:
        """The page from `top` down, `height` pixels (default: all of it, up to 16000)."""
        self.send("Page.bringToFront")  # a background tab never paints, and the capture would wait for it
        full = int(self.evaluate("document.documentElement.scrollHeight"))
        width = int(self.evaluate("document.documentElement.scrollWidth"))
        clip = {"x": 0, "y": top, "width": width, "height": min(height or full, 16000), "scale": 1}
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def _events(self) -> list[dict[str, Any]]:
        return [e for e in self.browser.events if e.get("sessionId") == self.session]
