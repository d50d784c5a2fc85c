"""Firefox ESR against a real server: stylized fps the page plays at the server's budget; JSON out.

Starts `python -m server` on a free port with the given models (compiled, as `make run` does),
opens the live page in headless Firefox ESR through Marionette with a fake camera, presses
Start, then counts the frames the #remote video presents over --seconds
(`requestVideoFrameCallback`) and reads the server's own fps from the stats line. Finally it
switches style and checks the switch is acknowledged.

    python bench/firefox.py --models-dir models --seconds 20 --output bench/results.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from results import merge_results

log = logging.getLogger("bench.firefox")

FIREFOX = "/usr/bin/firefox-esr"
PREFS = {
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.peerconnection.ice.obfuscate_host_addresses": False,
}
COUNT_FRAMES_JS = """
const v = document.getElementById('remote');
const d = document.body.dataset;  // the DOM outlives Marionette's script sandbox
d.benchFrames = '0';
const tick = () => {
  d.benchFrames = String(Number(d.benchFrames) + 1);
  v.requestVideoFrameCallback(tick);
};
v.requestVideoFrameCallback(tick);
"""
PAINTED_JS = "return Number(document.body.dataset.benchFrames)"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def warm(url: str) -> bool:
    """Whether the server answers and has finished start-up's compiling."""
    with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
        return bool(json.load(response)["status"] == "ok")


def wait_for(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll check() until it is truthy; RuntimeError naming `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = check()
        except Exception:  # noqa: BLE001 - not up yet
            value = None
        if value:
            return value
        time.sleep(0.25)
    raise RuntimeError(f"timed out waiting for {what}")


def start_server(models_dir: Path, data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """The real server in a child process, as `make run` starts it."""
    cmd = [sys.executable, "-m", "server", "--port", str(port), "--models-dir", str(models_dir)]
    cmd += ["--data-dir", str(data_dir), "--device", "cpu", "--log-level", "WARNING"]
    env = {**os.environ, "STYLEFUSION_ADMIN_TOKEN": "bench-firefox-token-0123"}
    return subprocess.Popen(cmd, env=env)


def measure(url: str, seconds: float) -> dict[str, Any]:
    """Open the page in Firefox, stream, count painted frames, switch style."""
    from marionette_driver.marionette import Marionette

    client = Marionette(
        host="127.0.0.1", port=free_port(), bin=FIREFOX, prefs=PREFS, app_args=["-headless"]
    )
    client.start_session()
    try:
        js = client.execute_script
        client.navigate(url + "/")
        wait_for(lambda: js("return document.body.dataset.ready === 'true'"), 60, "the page")
        js("document.getElementById('start').click()")
        remote_time = "return document.getElementById('remote').currentTime"
        wait_for(lambda: js(remote_time) > 1.0, 180, "stylized video")
        js(COUNT_FRAMES_JS)  # counts frames the video presents
        time.sleep(3)  # settle on the budget
        frames, start = js(PAINTED_JS), time.monotonic()
        time.sleep(seconds)
        painted = (js(PAINTED_JS) - frames) / (time.monotonic() - start)
        report = {
            "painted_fps": round(painted, 1),
            "server_fps_out": float(js("return document.getElementById('fps-out').textContent")),
            "budget": js("return document.body.dataset.budget"),
        }
        other = js(
            "const s = document.getElementById('style');"
            "const o = [...s.options].find(o => o.value !== s.value); return o && o.value"
        )
        if other:
            js(
                f"const s = document.getElementById('style'); s.value = {json.dumps(other)};"
                "s.dispatchEvent(new Event('change'))"
            )
            start = time.monotonic()
            wait_for(
                lambda: js("return document.body.dataset.activeStyle") == other, 30, "style ack"
            )
            report["style_switch_acked_s"] = round(time.monotonic() - start, 2)
        js("document.getElementById('stop').click()")
        return report
    finally:
        client.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Run the Firefox measurement and print (and merge) its JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models-dir", type=Path, default=Path("models"))
    p.add_argument("--data-dir", type=Path, default=Path("var/bench-firefox"), help="compile cache")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--output", type=Path, help="merge the JSON into this file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    port = free_port()
    server = start_server(args.models_dir, args.data_dir, port)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: warm(url), 900, "the server to finish compiling")
        report = {"browser": "firefox-esr (headless)", **measure(url, args.seconds)}
    finally:
        server.terminate()
        server.wait(30)
    print(json.dumps(report, indent=2))
    if args.output:
        merge_results(args.output, "firefox", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
