"""tools/gpu_continue/pack.py: what it refuses before it packs anything (the packing itself needs
the landmark detector and dlib's network and runs on a workstation with the data)."""

import subprocess
import sys
from pathlib import Path

import pytest

PACK = Path(__file__).resolve().parents[1] / "tools" / "gpu_continue" / "pack.py"


def pack(*args, cwd):
    return subprocess.run([sys.executable, str(PACK), *map(str, args)], cwd=cwd, capture_output=True, text=True)


@pytest.mark.parametrize("case", ["fv-dev", "missing", "reserved"])
def test_glasses_image_folders_are_checked_first(tmp_path, case):
    faces = tmp_path / "faces_in"
    faces.mkdir()
    images = {"fv-dev": tmp_path / "fv-dev" / "cutouts", "missing": tmp_path / "nowhere",
              "reserved": tmp_path / "real"}[case]
    if case != "missing":
        images.mkdir(parents=True)
    done = pack(faces, tmp_path / "no_checkpoint.safetensors", "--images", images, "--dst", tmp_path / "pack",
                cwd=tmp_path)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert str(images) in done.stderr
    assert {"fv-dev": "never train on it", "missing": "not a folder",
            "reserved": "already uses"}[case] in done.stderr
    assert not (tmp_path / "pack").exists()
