"""byeglasses.files: one list of image suffixes for every command, one whole-or-nothing write,
and reading images without importing torch."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from byeglasses.errors import InputError
from byeglasses.files import atomic_write, list_images
from byeglasses.synth.cache import read_rgb

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("module", ["byeglasses.files", "byeglasses.pipeline.imageio"])
def test_reading_images_does_not_import_torch(module):
    code = f"import sys, {module}; print('torch' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_a_tif_face_is_listed_and_read_like_a_jpg(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "face.tif")
    Image.fromarray(rgb).save(tmp_path / "anim.gif")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "._face.jpg").write_bytes(b"")  # macOS metadata, not an image
    assert list_images(tmp_path) == ["anim.gif", "face.tif"]
    assert np.array_equal(read_rgb(tmp_path / "face.tif"), rgb)
    assert read_rgb(tmp_path / "anim.gif").shape == rgb.shape  # OpenCV cannot read GIF; Pillow does
    with pytest.raises(InputError, match="not a folder"):
        list_images(tmp_path / "face.tif")


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")

    def broken(tmp):
        Path(tmp).write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]  # no temporary file left behind
    atomic_write(target, lambda tmp: Path(tmp).write_text("new"))
    assert target.read_text() == "new"
