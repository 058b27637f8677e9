"""Another web site against the phone, in a real Chromium (issue 25).

The worst case: a foreign page (another origin: another port of this
machine) that knows the phone's token, in a browser that has already given
the microphone to pages (``--use-fake-ui-for-media-stream``). It frames the
phone's page with ``?call=1`` (and ``allow="microphone"``), embeds a call's
timeline and recording. The phone's headers must stop all of it:
``frame-ancestors 'none'`` (no framed page, so no call), and
``Cross-Origin-Resource-Policy: same-origin`` (no image, no audio: not even
a recording's duration). The same image and audio, loaded by the phone's own
page, work (the control: the test can fail). And opening the page without
the token, with ``?call=1``, dials nothing.
"""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from test_phone_browser import chromium, page, running_phone, until
from test_phone_files import one_call
from test_phone_hostile_page import counting_bot

from pipecat_wsclient.phone import PhoneOptions
from support.browser import chromium_or_skip


@contextmanager
def foreign_site(html: str) -> Iterator[str]:
    """A page of another origin (``http://localhost:OTHER/``), served from a thread."""
    body = html.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        thread.join(5)


ATTACK = """<!doctype html>
<title>a foreign page</title>
<iframe id="frame" allow="microphone; autoplay" src="{page}"></iframe>
<img id="img" src="{timeline}">
<audio id="audio" preload="metadata" src="{recording}"></audio>
<script>
  window.results = {{}};
  const img = document.getElementById("img");
  const audio = document.getElementById("audio");
  img.onload = () => (results.img = "loaded " + img.naturalWidth);
  img.onerror = () => (results.img = "error");
  audio.onloadedmetadata = () => (results.audio = "duration " + audio.duration);
  audio.onerror = () => (results.audio = "error");
</script>
"""

PROBE = """
const results = window.probe = {};
const img = new Image();
img.onload = () => (results.img = "loaded " + img.naturalWidth);
img.onerror = () => (results.img = "error");
img.src = arguments[0];
const audio = new Audio();
audio.preload = "metadata";
audio.onloadedmetadata = () => (results.audio = "duration " + audio.duration);
audio.onerror = () => (results.audio = "error");
audio.src = arguments[1];
"""


def test_a_foreign_page_with_the_token_can_neither_frame_nor_embed_the_phone(tmp_path) -> None:
    chromium_or_skip()
    with counting_bot() as (bot, bot_uri):
        options = PhoneOptions(bot_uri, protocol="raw", sample_rate=8000)
        with running_phone(options, tmp_path) as phone:
            ended = asyncio.run(one_call(phone))  # the owner's call: files to steal
            assert bot.calls == 1
            timeline = phone.address(ended["timeline"])
            recording = phone.address(ended["recording"])
            attack = ATTACK.format(
                page=phone.address(call=1), timeline=timeline, recording=recording
            )
            with foreign_site(attack) as foreign, chromium() as driver:
                driver.get(foreign)
                results = until(
                    "the foreign page's results",
                    lambda: (r := page(driver, "window.results")) and len(r) == 2 and r,
                    20,
                )
                time.sleep(3.0)  # time for a framed page to dial, were it shown
                framed_calls = bot.calls
                # The control: the phone's own page loads the very same files.
                driver.get(phone.url)
                driver.execute_script(PROBE, timeline, recording)
                own = until(
                    "the phone page's probe",
                    lambda: (r := page(driver, "window.probe")) and len(r) == 2 and r,
                    20,
                )
                # Without the token, ?call=1 is a 403 page that dials nothing.
                driver.get(phone.base_url + "?call=1")
                time.sleep(2.0)
                refused_body = driver.find_element("tag name", "body").text
                calls_after = bot.calls
    print(f"foreign page: {results}; the phone's own page: {own}; refused: {refused_body!r}")
    assert results == {"img": "error", "audio": "error"}
    assert own["img"].startswith("loaded") and own["audio"].startswith("duration")
    assert framed_calls == 1, "the framed page dialed"
    assert refused_body == "Forbidden" and calls_after == 1
