"""No code outside app/models opens a network connection during a full pipeline run.

An audit hook (it sees every socket connect and DNS lookup made through Python) records the
stack of each attempt; the run is the real CLI in a subprocess: ingest a recording, ask, list
the timeline and the models. A deliberate connection at the end proves the guard sees them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT, START, Media

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent("""
    import json, os, socket, sys, traceback
    sys.path.insert(0, {root!r})
    attempts = []
    def hook(event, args):
        if event in ("socket.connect", "socket.getaddrinfo", "socket.gethostbyname"):
            where = [f.filename for f in traceback.extract_stack()]
            attempts.append({{"event": event, "target": repr(args[1:2] if event ==
                              "socket.connect" else args[:2]),
                              "from_models": any("/app/models/" in w for w in where),
                              "stack": where[-6:]}})
    sys.addaudithook(hook)
    from app.cli import main
    data = {data!r}
    codes = [
        main(["ingest", "--video", {video!r}, "--audio", {wav!r}, "--start", {start!r},
              "--data-dir", data]),
        main(["ask", "what did I have for breakfast", "--json", "--data-dir", data]),
        main(["timeline", "--day", {start!r}[:10], "--data-dir", data]),
        main(["models", "list", "--data-dir", data]),
    ]
    during_run = list(attempts)
    try:  # the control: a connection the guard must see
        socket.create_connection(("127.0.0.1", 9), timeout=0.5)
    except OSError:
        pass
    print("RESULT" + json.dumps({{"codes": codes, "during_run": during_run,
                                   "control": attempts[len(during_run):]}}))
""")


def test_pipeline_run_opens_no_connection(media: Media, tmp_path: Path) -> None:
    script = SCRIPT.format(root=str(ROOT), data=str(tmp_path / "data"), video=str(media.video),
                           wav=str(media.wav), start=START)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=180, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                               "DAYBOOK_CONFIG": str(tmp_path / "none.toml")})
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT")), None)
    assert line is not None, proc.stderr[-3000:]
    result = json.loads(line[len("RESULT"):])
    assert result["codes"] == [0, 0, 0, 0]
    assert result["during_run"] == []
    assert any(a["event"] == "socket.connect" and not a["from_models"]
               for a in result["control"])
