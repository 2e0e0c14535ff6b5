"""The work behind `byeglasses serve`, without a browser: per-request settings and files, requests
at once, messages, defaults shared with the command line."""

import importlib.util
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from byeglasses.cli import build_parser, main
from byeglasses.pipeline.remover import RemovalSettings
from byeglasses.web.service import QUALITY, RemovalService


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    return RemovalService(tmp_path_factory.mktemp("web"), max_upload_mb=1)


@pytest.fixture(scope="module")
def photos(tmp_path_factory, astronaut):
    """Two different photos with drawn glasses."""
    from byeglasses.pipeline.detect import detect_faces
    from byeglasses.synth.render import synthesize

    folder = tmp_path_factory.mktemp("photos")
    landmarks = detect_faces(astronaut)[0].landmarks
    paths = []
    for seed, name in [(0, "a.png"), (3, "b.jpg")]:
        Image.fromarray(synthesize(astronaut, landmarks, seed).x).save(folder / name, quality=92)
        paths.append(folder / name)
    return paths


def outcome(results):
    """What a request returned, in bytes and words."""
    return [(r.name, r.ok, r.message, r.download.read_bytes() if r.download else None) for r in results]


@pytest.mark.slow
def test_requests_at_once_get_the_same_results_as_one_after_another(service, photos):
    keep = RemovalSettings(min_change=1000.0)  # this request's faces are all left untouched
    a = (photos, RemovalSettings())
    b = (photos[::-1], keep)
    alone_a, alone_b = outcome(service.process(*a)), outcome(service.process(*b))
    assert [ok for _, ok, _, _ in alone_a] == [True, True]
    assert all("glasses removed" in m for _, _, m, _ in alone_a)
    assert all("no glasses found" in m for _, _, m, _ in alone_b)  # settings differ per request
    assert alone_b[0][3] == photos[1].read_bytes()  # untouched: the upload itself

    for _ in range(3):
        start = threading.Barrier(4)

        def request(args):
            start.wait()
            return outcome(service.process(*args))

        with ThreadPoolExecutor(4) as pool:
            got = list(pool.map(request, [a, b, a, b]))
        assert got == [alone_a, alone_b, alone_a, alone_b]


def test_results_of_one_request_never_overwrite_another(service, photos):
    first = service.process(photos[:1])[0].download
    second = service.process(photos[:1])[0].download
    assert first != second and first.exists() and second.exists()


def test_previews_are_shrunk_and_the_download_keeps_the_full_size(service, photos, tmp_path):
    from byeglasses.web.service import PREVIEW_SIDE

    side = PREVIEW_SIDE + 320
    with Image.open(photos[0]) as im:
        im.resize((side, side), Image.BICUBIC).save(tmp_path / "large.jpg", quality=90)
    (r,) = service.process([tmp_path / "large.jpg"])
    assert r.ok and r.changed, r.message
    with Image.open(r.download) as im:
        assert im.size == (side, side) and im.format == "JPEG"
    for p in (r.before, r.after, r.overlay):
        with Image.open(p) as im:
            assert im.size == (PREVIEW_SIDE, PREVIEW_SIDE)
    with Image.open(r.before) as before, Image.open(r.overlay) as overlay:
        red = np.asarray(overlay, np.int16)[..., 0] - np.asarray(before, np.int16)[..., 0]
    assert red.max() > 60  # the predicted glasses are tinted red


def test_messages_name_the_upload_not_the_server_path(service, tmp_path):
    big = tmp_path / "big.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (700, 700, 3), dtype=np.uint8)).save(big)
    text = tmp_path / "notes.jpg"
    text.write_text("hello")
    (r_big, r_text) = service.process([big, text])
    assert not r_big.ok and r_big.message.startswith("big.png: ") and "over this page's upload limit of 1 MB" \
        in r_big.message
    assert not r_text.ok and r_text.message == "notes.jpg: not an image, or in a format Pillow cannot read"
    assert str(tmp_path) not in r_big.message + r_text.message


def test_a_device_that_does_not_exist_is_refused_with_a_message(service, photos):
    from byeglasses.errors import ByeGlassesError

    with pytest.raises(ByeGlassesError, match="unknown device 'gpu7'"):
        service.process(photos, RemovalSettings(device="gpu7"))


def test_serve_starts_the_page_from_the_command_line_defaults():
    from byeglasses.cli.remove import settings_from_args

    parser = build_parser()
    serve = parser.parse_args(["serve", "--checkpoint", "c.safetensors", "--device", "cpu"])
    remove = parser.parse_args(["remove", "x.jpg", "-o", "out", "--checkpoint", "c.safetensors", "--device", "cpu"])
    assert settings_from_args(serve) == settings_from_args(remove)
    assert settings_from_args(serve).checkpoint == "c.safetensors"
    assert QUALITY == remove.quality


def test_serve_without_gradio_says_what_to_install(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "byeglasses serve: error: the web page needs Gradio, which is not installed: " \
           "pip install 'byeglasses[web]'" in err
    assert "Traceback" not in err
