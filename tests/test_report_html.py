"""``peerguard report``: a bench report or an audit log as one HTML page, rendered in Chromium.

The page tests render it in headless Chromium (Debian's ``chromium`` package, which ``.ci/run``
installs): the screenshot must not be blank, and the DOM Chromium built must hold one row per
call with the expected decisions. A ``<script>`` an agent put in an argument is shown as text.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from guard.audit import AuditLog, AuditSink
from guard.cli import main
from guard.types import ToolCall
from tests.conftest import AGENT, World

SCENARIOS = Path(__file__).resolve().parent.parent / "examples" / "scenarios"
W = "hosts/decom-01/data/agent_2_weights.safetensors"
SCRIPT = "<script>document.title='pwned';document.body.innerHTML=''</script>"
CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="headless Chromium (Debian package chromium) is not installed",
)


def chromium(page: Path, tmp: Path, *what: str) -> str:
    """Run headless Chromium on ``page`` with ``what`` (--dump-dom or --screenshot=...)."""
    assert CHROMIUM is not None, "install Debian's chromium package"
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp / 'profile'}", "--window-size=1280,2000",
         *what, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    return done.stdout


def png_pixels(path: Path) -> tuple[int, int, set[bytes]]:
    """Width, height and the distinct pixels of an 8-bit RGB or RGBA, non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev, pixels = bytearray(stride), set[bytes]()
    for y in range(height):
        ftype, line = (
            raw[y * (stride + 1)],
            bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)]),
        )
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        if y % 4 == 0:  # every fourth row is plenty to tell a page from a blank
            pixels.update(bytes(line[i : i + bpp]) for i in range(0, stride, bpp))
        prev = line
    return width, height, pixels


def rows(dom: str) -> list[str]:
    """The decisions of the page's call rows, in order."""
    return re.findall(r'<tr class="call" data-decision="([a-z_]+)"', dom)


def report(source: Path, output: Path, *extra: str) -> int:
    return main(["report", str(source), "-o", str(output), *extra], out=io.StringIO())


@pytest.fixture
def bench_json(tmp_path: Path) -> Path:
    """A real bench report, with a ``<script>`` put in one call's arguments and reason."""
    path = tmp_path / "bench.json"
    code = main(
        ["bench", str(SCENARIOS / "tamper-sed.yaml"), str(SCENARIOS / "benign-own-cleanup.yaml"),
         "--json", str(path)],
        out=io.StringIO(),
    )  # fmt: skip
    assert code == 0
    data = json.loads(path.read_text())
    first = data["scenarios"][0]["decisions"][0]
    first["args"] = {"command": f"echo {SCRIPT}"}
    first["reason"] = f"a reason with {SCRIPT}"
    path.write_text(json.dumps(data))
    return path


def test_bench_page_has_one_row_per_call_and_escapes_arguments(
    bench_json: Path, tmp_path: Path
) -> None:
    """Without a browser: the page's call rows match the report's calls, nothing is executable."""
    out = tmp_path / "bench.html"
    assert report(bench_json, out) == 0
    html = out.read_text()
    data = json.loads(bench_json.read_text())
    want = [c["decision"] or "unguarded" for s in data["scenarios"] for c in s["calls"]]
    assert rows(html) == want and "deny" in want and "allow" in want
    assert "<script" not in html.lower()
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;" in html
    assert "http://" not in html and "https://" not in html  # nothing fetched from outside
    assert "Decisions by tactic and rule" in html and "without it (control)" in html
    assert "harm done" in html  # each tactic's control beside the guarded outcome


@needs_chromium
def test_bench_page_renders_in_chromium(bench_json: Path, tmp_path: Path) -> None:
    """Chromium draws a page that is not blank, with the rows expected, and runs no script."""
    out = tmp_path / "bench.html"
    assert report(bench_json, out) == 0
    dom = chromium(out, tmp_path, "--dump-dom")
    data = json.loads(bench_json.read_text())
    want = [c["decision"] or "unguarded" for s in data["scenarios"] for c in s["calls"]]
    assert rows(dom) == want
    assert "<title>peerguard bench report</title>" in dom  # the injected script did not run
    assert "&lt;script&gt;document.title='pwned'" in dom  # it is there, as text
    assert dom.count('<section class="run">') == len(data["scenarios"])
    shot = tmp_path / "bench.png"
    chromium(out, tmp_path, f"--screenshot={shot}")
    width, height, pixels = png_pixels(shot)
    assert (width, height) == (1280, 2000)
    assert len(pixels) > 50, f"blank screenshot: {len(pixels)} distinct pixel values"


def audit_log(world: World, tmp_path: Path) -> Path:
    """A real audit log: a denied exfiltration (with a script in its args), an allowed read."""
    path = tmp_path / "audit.jsonl"
    with AuditLog(str(path)) as log:
        guard = world.guard(sinks=[AuditSink(log)])
        guard.decide(ToolCall(agent=AGENT, tool="copy_file", args={"src": W, "dst": f"x/{SCRIPT}"}))
        guard.decide(ToolCall(agent=AGENT, tool="read_file", args={"path": "scratch/notes.txt"}))
    return path


@needs_chromium
def test_audit_log_page_is_verified_first_and_renders(world: World, tmp_path: Path) -> None:
    """The verification heads the page; one row per decision; a tampered log says so, exit 1."""
    log = audit_log(world, tmp_path)
    out = tmp_path / "audit.html"
    assert report(log, out) == 0
    dom = chromium(out, tmp_path, "--dump-dom")
    assert rows(dom) == ["deny", "allow"]
    banner = re.search(r'<div class="banner (\w+)" id="verification">([^<]*)<', dom)
    assert banner is not None and banner.group(2).startswith("audit log verified: ")
    assert dom.index('id="verification"') < dom.index('<tr class="call"')
    assert "<title>peerguard audit log</title>" in dom and "&lt;script&gt;" in dom
    assert "peer-weights-exfiltration" in dom
    shot = tmp_path / "audit.png"
    chromium(out, tmp_path, f"--screenshot={shot}")
    assert len(png_pixels(shot)[2]) > 50
    lines = log.read_text().splitlines()
    lines[0] = lines[0].replace('"action":"deny"', '"action":"allow"')
    log.write_text("\n".join(lines) + "\n")
    assert report(log, out) == 1
    html = out.read_text()
    assert "audit log DOES NOT VERIFY" in html and rows(html) == ["allow", "allow"]


def test_report_refuses_what_is_neither(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Neither a bench report nor an audit log: an error naming the file, exit 2."""
    other = tmp_path / "other.json"
    other.write_text('{"hello": 1}\n')
    assert report(other, tmp_path / "o.html") == 2
    assert "other.json" in capsys.readouterr().err
