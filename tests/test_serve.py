"""`byeglasses serve`, tested in a real browser: headless Chromium driven by Playwright against
the command started in a subprocess, as a user would run it."""

import os
import queue
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from helpers import bomb_png

ROOT = Path(__file__).resolve().parents[1]
MAX_UPLOAD_MB = 2
ARTIST = "byeglasses browser test"
# Gradio puts a group's classes on two nested elements: match the outer one.
RESULT = ".photo-result:not(.photo-result .photo-result)"
ERROR = ".photo-error:not(.photo-error .photo-error)"

pytestmark = pytest.mark.slow


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    pytest.importorskip("gradio", reason="the web page needs Gradio: pip install '.[web]'")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright: "
                                   "pip install '.[test]'")
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium, as .ci/run does)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True)
        yield b
        b.close()


class Server:
    """`python -m byeglasses serve` in a subprocess with its own TMPDIR, HOME and working folder,
    so that the tests can see everything it writes."""

    def __init__(self, root: Path, *flags: str):
        self.tmp, self.home, self.cwd = root / "tmp", root / "home", root / "cwd"
        for d in (self.tmp, self.home, self.cwd):
            d.mkdir()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = dict(os.environ, TMPDIR=str(self.tmp), HOME=str(self.home), PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "byeglasses", "serve", "--port", str(self.port),
             "--max-upload-mb", str(MAX_UPLOAD_MB), *flags],
            cwd=self.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = queue.Queue()
        self.output = []
        threading.Thread(target=self._read, daemon=True).start()
        self.url = None
        deadline = time.monotonic() + 180
        while self.url is None:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.stop()
                pytest.fail("byeglasses serve did not start within 180 s:\n" + "".join(self.output))
            if line is None:
                pytest.fail("byeglasses serve exited:\n" + "".join(self.output))
            if "open http://" in line:
                self.url = line.split("open ")[1].split()[0]

    def _read(self):
        for line in self.proc.stdout:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        return self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("serve"))
    yield s
    s.stop()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(accept_downloads=True)
    p = context.new_page()
    p.set_default_timeout(120_000)
    p.goto(server.url)
    yield p
    context.close()


@pytest.fixture(scope="module")
def glasses_photo(tmp_path_factory, astronaut):
    """The astronaut with glasses drawn by the synthesizer, as a PNG with an ICC profile and EXIF;
    and the drawn glasses mask."""
    from byeglasses.pipeline.detect import detect_faces
    from byeglasses.synth.render import synthesize

    sample = synthesize(astronaut, detect_faces(astronaut)[0].landmarks, 0)
    path = tmp_path_factory.mktemp("upload") / "astronaut with glasses.png"
    exif = Image.Exif()
    exif[0x013B] = ARTIST  # Artist
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(sample.x).save(path, exif=exif, icc_profile=icc)
    return path, sample.glasses_mask > 0


def upload(page, paths):
    page.set_input_files("#photos input[type=file]", [str(p) for p in paths])
    for p in paths:  # uploaded: the file list shows each name
        page.locator("#photos").get_by_text(Path(p).stem).first.wait_for()
    page.click("#run")


def wait_for_results(page, count):
    page.locator("#status").get_by_text("photo(s)").wait_for()
    page.locator(RESULT).nth(count - 1).wait_for()
    assert page.locator(RESULT).count() == count, page.inner_text("body")


def test_upload_gives_the_full_resolution_result_changed_only_where_the_glasses_were(
        page, glasses_photo, tmp_path):
    from byeglasses.cli import main

    path, drawn = glasses_photo
    upload(page, [path])
    wait_for_results(page, 1)
    text = page.inner_text(RESULT)
    assert path.name in text and "face 1: glasses removed" in text, text
    with page.expect_download() as download:
        page.click(".photo-download")
    assert download.value.suggested_filename == path.name
    got = tmp_path / "download.png"
    download.value.save_as(got)

    with Image.open(got) as im, Image.open(path) as original:
        assert im.format == "PNG" and im.size == original.size
        assert im.info.get("icc_profile") == original.info["icc_profile"]
        assert im.getexif().get(0x013B) == ARTIST
        out, x = np.asarray(im.convert("RGB")), np.asarray(original.convert("RGB"))
    changed = (out != x).any(axis=2)
    near_glasses = cv2.dilate(drawn.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    assert changed.any() and not (changed & ~near_glasses).any(), "pixels changed away from the glasses"
    assert np.abs(out.astype(int) - x)[drawn].mean() > 10, "the drawn glasses were left in place"
    # The page's result is exactly what `byeglasses remove` writes for the same file.
    assert main(["remove", str(path), "-o", str(tmp_path / "cli")]) == 0
    with Image.open(tmp_path / "cli" / path.name) as cli:
        assert np.array_equal(np.asarray(cli.convert("RGB")), out)


def test_bad_files_get_a_message_naming_them_and_the_server_goes_on(page, server, glasses_photo, tmp_path,
                                                                    astronaut):
    text_file = tmp_path / "notes.jpg"
    text_file.write_text("not a photo at all\n")
    truncated = tmp_path / "cut.png"
    Image.fromarray(astronaut).save(truncated)
    truncated.write_bytes(truncated.read_bytes()[:20_000])
    bomb = tmp_path / "bomb.png"
    bomb_png(bomb)
    no_face = tmp_path / "rocket.png"
    Image.fromarray(astronaut[:200, 380:]).save(no_face)  # the rocket and the flag: no face
    upload(page, [text_file, truncated, bomb, no_face])
    wait_for_results(page, 4)
    errors = page.locator(ERROR).all_inner_texts()
    assert len(errors) == 4, errors
    assert "notes.jpg: not an image" in errors[0]
    assert "cut.png: corrupt or truncated" in errors[1]
    assert "bomb.png: declares too many pixels" in errors[2] and "decompression bomb" in errors[2]
    assert "rocket.png: no face found" in errors[3]
    body = page.inner_text("body")
    assert "Traceback" not in body and str(server.tmp) not in body  # no server paths either
    assert "0 with glasses removed, 0 without glasses, 4 failed" in page.inner_text("#status")

    page.reload()
    upload(page, [glasses_photo[0]])
    wait_for_results(page, 1)
    assert "glasses removed" in page.inner_text(RESULT)
    assert server.proc.poll() is None


def test_a_photo_over_the_upload_limit_is_refused_by_name(page, tmp_path):
    big = tmp_path / "huge photo.png"
    noise = np.random.default_rng(0).integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    Image.fromarray(noise).save(big)  # ~3 MB of noise: over the server's 2 MB
    assert big.stat().st_size > MAX_UPLOAD_MB * 2 ** 20
    page.set_input_files("#photos input[type=file]", [str(big)])
    message = page.get_by_text("exceed the maximum allowed size")
    message.wait_for()
    assert "huge photo.png" in message.inner_text()


def test_the_example_is_one_click_away(page):
    page.click("#example")
    wait_for_results(page, 1)
    text = page.inner_text(RESULT)
    assert "astronaut-with-glasses.png" in text and "face 1: glasses removed" in text
    page.locator(".photo-download").first.wait_for()  # mounted a moment after the text
    assert page.locator(".photo-download").count() == 1


def test_advanced_settings_reach_the_server(browser, glasses_photo, tmp_path):
    """`serve --min-change 1000`: the page starts with the command's settings in its advanced
    settings, and the server applies them: the model may not change any face that much, so the
    photo comes back as it was. (Typing into the field and uploading at once raced with the page's
    own state on a loaded machine, so the value comes from the command line.)"""
    (tmp_path / "serve").mkdir()
    server = Server(tmp_path / "serve", "--min-change", "1000")
    context = browser.new_context(accept_downloads=True)
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(server.url)
        page.get_by_text("Advanced settings").click()
        assert float(page.get_by_label("min change (levels of 255)").input_value()) == 1000
        upload(page, [glasses_photo[0]])
        wait_for_results(page, 1)
        assert "face 1: no glasses found" in page.inner_text(RESULT)
        with page.expect_download() as download:
            page.click(".photo-download")
        download.value.save_as(tmp_path / "same.png")
        assert (tmp_path / "same.png").read_bytes() == glasses_photo[0].read_bytes()
    finally:
        context.close()
        server.stop()


def test_stopping_the_server_deletes_everything_it_wrote(page, server, glasses_photo):
    """Run last: it stops the module's server. Uploads, previews and results all went to one
    temporary folder, which is gone after SIGTERM; the working folder and HOME stay empty."""
    upload(page, [glasses_photo[0]])
    wait_for_results(page, 1)
    written = [p for p in server.tmp.rglob("*") if p.is_file()]
    assert any(p.name == glasses_photo[0].name for p in written), written  # the upload, while running
    assert server.stop() == 0
    assert "stopped; temporary files deleted" in "".join(server.output)
    leftovers = [p for d in (server.tmp, server.home, server.cwd) for p in d.rglob("*")]
    assert not leftovers, leftovers
