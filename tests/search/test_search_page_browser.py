"""The results page in a real browser: headless Chromium draws K thumbnails
where the DOM puts them.

Two renderings of the same page at the same window size: a screenshot, and
the DOM of a copy with a test-only script that writes each <img>'s box into
the page (the page itself has no script). Each track's thumbnail is one
solid colour, so the pixel at the centre of each box must be that colour.
Skipped, with the reason, only where no Chromium is installed (.ci/run
installs Debian's `chromium`).
"""

import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from tests.search import search_folders as sf
from PIL import Image

from alm_tf import search

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1000, 1400)
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1", f"--window-size={WINDOW[0]},{WINDOW[1]}")
PROBE = """<script>
window.addEventListener('load', () => {
  const boxes = [...document.querySelectorAll('img')].map(i => {
    const r = i.getBoundingClientRect(); return [r.left, r.top, r.width, r.height, i.alt];});
  const out = document.createElement('pre'); out.id = 'boxes'; out.textContent = JSON.stringify(boxes);
  out.style.position = 'absolute'; out.style.left = '-9999px'; document.body.appendChild(out);
});
</script></body>"""


def _browser():
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def _chromium(browser, profile, *args):
    command = [browser, *FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.skipif(_browser() is None, reason="no Chromium installed (apt-get install chromium; .ci/run "
                                               "installs it)")
def test_page_draws_k_thumbnails_where_the_dom_puts_them(tmp_path):
    k = 5
    folder = sf.write_folder(str(tmp_path / "a"), [sf.probs(female=0.95 - 0.1 * i) for i in range(6)])
    search.index_folders([folder], str(tmp_path / "idx"))
    frame = search.Index(str(tmp_path / "idx")).search("female", top=k)
    page = tmp_path / "results.html"
    search.write_results(frame, str(page), ("gender",))
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE))
    browser = _browser()
    shot = tmp_path / "shot.png"
    result = _chromium(browser, tmp_path / "profile1", f"--screenshot={shot}", page.as_uri())
    assert shot.is_file(), result.stderr[-2000:]
    result = _chromium(browser, tmp_path / "profile2", "--virtual-time-budget=5000", "--dump-dom",
                       probe.as_uri())
    match = re.search(r'<pre id="boxes"[^>]*>(.*?)</pre>', result.stdout, re.S)
    assert match, result.stderr[-2000:]
    boxes = json.loads(match.group(1).replace("&quot;", '"'))
    assert len(boxes) == k

    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # not blank
    for (left, top, width, height, alt), track in zip(boxes, frame["track_id"]):
        assert alt == f"track {track}" and width > 20 and height > 40
        assert top + height <= WINDOW[1], "the window is too small for the page"
        y, x = int(top + height / 2), int(left + width / 2)
        centre = pixels[y - 3:y + 4, x - 3:x + 4].reshape(-1, 3).mean(axis=0)
        expected = np.array(sf.COLOURS[(track - 1) % len(sf.COLOURS)])
        assert np.abs(centre - expected).max() < 40, (track, centre, expected)
    assert os.path.getsize(page) > 0
