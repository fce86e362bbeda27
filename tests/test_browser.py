"""The run report in a real browser: headless Chromium loads every figure, logs no console error.

Chromium is driven through its own command line (no Python browser library): ``--screenshot``
for the picture and ``--dump-dom`` for the page after load. ``--dump-dom`` returns HTML, not the
result of a script, so the checks run in a copy of the report with a small probe script added:
on load it inspects every ``<img>`` and writes JSON into ``<pre id="result">``, which is read
back from the dumped DOM.

Console errors are read from Chromium's log (``--enable-logging=stderr``). For an ordinary page
Chromium logs every console message at INFO, whatever its level, e.g. for ``console.error("x")``:

    [pid:tid:date/time:INFO:CONSOLE:2] "x", source: file:///.../page.html (2)

(older builds write ``INFO:CONSOLE(2)``). The level is lost, but the report has no script of its
own and the probe logs nothing, so any console line from the page is a failure: a thrown
exception ("Uncaught ..."), a blocked resource, a CSP violation. The rest of Chromium's stderr
(dbus, GPU, sandbox warnings of a machine without a desktop) never carries the CONSOLE tag.

The screenshot goes to ``test-output/report-screenshot.png`` at the repository root (git-ignored)
so that CI keeps it as an artifact. Without Chromium the tests skip, except under ``CI=true``,
where ``.ci/run`` installs it and a missing browser is a failure.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from sslscope.report import build_report
from tests.test_report import _write_run

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
SCREENSHOT = REPO / "test-output" / "report-screenshot.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIMEOUT_S = 60
WINDOW = (1280, 3300)  # the synthetic report is about 3200 px tall at this width: all of it

# Chromium's log line for a page console message: "...:INFO:CONSOLE:12] "text", source: URL (12)"
CONSOLE_LINE = re.compile(r':CONSOLE(?::\d+|\(\d+\))\] "(?P<text>.*)", source: (?P<source>\S*)')
# Browser-internal pages (extensions, chrome://) are not the page under test.
INTERNAL_SOURCE = ("chrome://", "chrome-extension://", "chrome-untrusted://", "devtools://")

# Added at the start of <head>: records uncaught errors and failed resource loads (the capture
# phase sees an <img>'s error event), and on load checks every image and writes the result.
PROBE = """<script>
(function () {
  var errors = [];
  function url(u) { u = String(u || ""); return u.slice(0, 5) === "data:" ? u.slice(0, 40) : u; }
  window.addEventListener("error", function (e) {
    var t = e.target;
    errors.push(t && t !== window && t.tagName
      ? "failed to load <" + t.tagName.toLowerCase() + "> " + url(t.src)
      : String(e.message));
  }, true);
  window.addEventListener("unhandledrejection", function (e) { errors.push(String(e.reason)); });
  window.addEventListener("load", function () {
    var imgs = Array.prototype.slice.call(document.images), broken = [];
    imgs.forEach(function (img, i) {
      if (!(img.complete && img.naturalWidth > 0)) {
        broken.push({index: i, alt: img.alt, src: url(img.currentSrc || img.src)});
      }
    });
    var pre = document.createElement("pre");
    pre.id = "result";
    pre.textContent = JSON.stringify({images: imgs.length, broken: broken, errors: errors});
    document.body.appendChild(pre);
  });
})();
</script>"""
RESULT = re.compile(r'<pre id="result">(.*?)</pre>', re.DOTALL)


def _find_chromium() -> str | None:
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = _find_chromium()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but chromium is not installed; .ci/run should have installed it")
        pytest.skip("chromium not installed (not on PATH, no /usr/bin/chromium): make browser-deps")
    return path


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    return build_report(_write_run(tmp_path_factory.mktemp("run") / "vicreg_digits"))


def _run_chromium(chromium: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with a fresh profile; kill its whole process group afterwards."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    cmd = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-extensions",
        "--hide-scrollbars", "--enable-logging=stderr", "--v=0",
        f"--user-data-dir={profile}", *args,
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace",
        start_new_session=True,  # its own process group, so stragglers can be killed together
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"chromium ran past {TIMEOUT_S} s: {' '.join(cmd)}\n{err[-3000:]}")
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # renderer or crashpad processes left behind
        except (ProcessLookupError, PermissionError):
            pass
    assert proc.returncode == 0, f"chromium exited {proc.returncode}:\n{err[-3000:]}"
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def console_messages(stderr: str) -> list[str]:
    """Page console messages in Chromium's stderr log; the browser's own noise is not one."""
    found = []
    for line in stderr.splitlines():
        m = CONSOLE_LINE.search(line)
        if m and not m["source"].startswith(INTERNAL_SOURCE):
            found.append(f'{m["text"]} ({m["source"] or "no source"})')
        elif m is None and "Uncaught" in line:  # a log format this pattern does not know
            found.append(line.strip())
    return found


def probe_page(chromium: str, page: Path, tmp: Path) -> tuple[dict, list[str]]:
    """Load a copy of `page` with the probe; return its result and the page's console messages."""
    text = page.read_text(encoding="utf-8")
    assert "<head>" in text
    probed = page.with_name(page.stem + ".probe.html")
    probed.write_text(text.replace("<head>", "<head>" + PROBE, 1), encoding="utf-8")
    try:
        done = _run_chromium(
            chromium, tmp, "--virtual-time-budget=5000", "--dump-dom", probed.as_uri()
        )
    finally:
        probed.unlink()
    m = RESULT.search(done.stdout)
    assert m, f"the probe wrote no result (load never fired?):\n{done.stdout[-2000:]}"
    # the dumped DOM escapes the text of <pre> ("<" comes back as "&lt;")
    return json.loads(html.unescape(m.group(1))), console_messages(done.stderr)


def test_report_figures_load_without_console_errors(chromium, report, tmp_path):
    result, console = probe_page(chromium, report, tmp_path)
    # every <img> of the page (at least the loss and probe figures) was seen and decoded
    assert result["images"] == report.read_text(encoding="utf-8").count("<img") >= 2
    assert result["broken"] == []
    assert result["errors"] == []
    assert console == []


def test_report_screenshot(chromium, report, tmp_path):
    SCREENSHOT.parent.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    done = _run_chromium(
        chromium, tmp_path, f"--screenshot={SCREENSHOT}", f"--window-size={WINDOW[0]},{WINDOW[1]}",
        report.as_uri(),
    )
    assert SCREENSHOT.is_file(), f"no screenshot written:\n{done.stderr[-3000:]}"
    data = SCREENSHOT.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == WINDOW
    assert len(data) > 50_000  # text, tables and two figures, not a blank page


def test_checker_catches_a_broken_image_and_a_console_error(chromium, report, tmp_path):
    """Negative control: the same checks fail on a page with a broken figure and a script error."""
    page = report.read_text(encoding="utf-8")
    bad = tmp_path / "broken.html"
    bad.write_text(
        page.replace(
            "</body>",
            '<img alt="missing" src="no-such-figure.png">'
            '<img alt="corrupt" src="data:image/png;base64,iVBORw0KGgoAAAA">'
            '<script>console.error("deliberate console error"); undefinedFunction();</script>'
            "</body>",
        ),
        encoding="utf-8",
    )
    result, console = probe_page(chromium, bad, tmp_path)
    assert result["images"] == 4
    assert [b["alt"] for b in result["broken"]] == ["missing", "corrupt"]
    assert any("no-such-figure.png" in e for e in result["errors"])
    assert any("undefinedFunction is not defined" in e for e in result["errors"])
    assert any(c.startswith("deliberate console error (file://") for c in console)
    assert any("Uncaught ReferenceError: undefinedFunction" in c for c in console)
