"""`byeglasses remove` on collections: the manifest, resume after a kill, sharding over processes,
and outputs that never collide, never replace foreign files and are written whole."""

import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from byeglasses.cli import main

ROOT = Path(__file__).resolve().parents[1]
FORCE = ["--glasses-threshold", "0", "--min-area", "0", "--min-change", "0"]  # the random tiny model then removes on every face


def _photos(src, faces, count):
    """`count` photos in `src`, cycling over the astronaut face crops."""
    src.mkdir(exist_ok=True)
    names = sorted(faces.iterdir())
    for i in range(count):
        shutil.copyfile(names[i % len(names)], src / f"{i:03d}.png")
    return src


def _manifest(out):
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def _files(out):
    return {p.name: p.read_bytes() for p in out.iterdir() if p.name != "manifest.jsonl"}


def _env():
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def _cli(*args):
    return [sys.executable, "-m", "byeglasses", "remove", *map(str, args)]


def test_the_manifest_records_each_decision_and_a_rerun_skips_what_is_done(
        astronaut_faces, astronaut, tmp_path, tiny_checkpoint, capsys):
    src, out = _photos(tmp_path / "in", astronaut_faces, 4), tmp_path / "out"
    Image.fromarray(np.full((120, 160, 3), 90, np.uint8)).save(src / "flat.png")
    (src / "junk.jpg").write_bytes(b"not a jpeg")
    args = ["remove", str(src), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--workers", "0",
            "--batch-size", "3", *FORCE]
    assert main(args) == 1
    lines = _manifest(out)
    assert [Path(r["input"]).name for r in lines] == ["000.png", "001.png", "002.png", "003.png", "flat.png",
                                                      "junk.jpg"]
    by = {Path(r["input"]).name: r for r in lines}
    assert by["flat.png"]["status"] == "no face" and by["junk.jpg"]["status"] == "failed"
    assert "junk.jpg: not an image" in by["junk.jpg"]["reason"]
    for r in lines[:4]:
        assert r["status"] == "removed" and r["output"] == Path(r["input"]).name and r["ms"] > 0
        (face,) = r["faces"]
        assert len(face["box"]) == 4 and 0 <= face["glasses_probability"] <= 1 and face["glasses_area"] > 0
        assert 0 <= face["eyes_kept"] <= 1
        Image.open(out / r["output"]).load()
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert summary.startswith("done: 6 input(s): 4 with glasses removed, 0 without glasses (copied unchanged), "
                              "1 with no face found, 1 failed")

    # the rerun redoes only the failed input and the one whose output was deleted
    (out / "002.png").unlink()
    times = {r["input"]: r["time"] for r in lines}
    assert main(args) == 1
    again = {r["input"]: r for r in _manifest(out)}
    redone = {Path(k).name for k, r in again.items() if r["time"] != times[k]}
    assert redone == {"002.png", "junk.jpg"} and len(again) == 6
    assert "; 4 already done by an earlier run" in capsys.readouterr().out
    assert main(args + ["--overwrite"]) == 1
    assert all(r["time"] > times[r["input"]] for r in _manifest(out))


def _run_until_lines(cmd, out, lines, sig):
    """Start `cmd`, send `sig` once the manifest holds `lines` lines; returns the exit status and
    stderr. Output goes to a file: worker processes may outlive a killed parent for a moment."""
    log = out.parent / f"{out.name}.log"
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=f, stderr=f, text=True)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            path = out / "manifest.jsonl"
            if path.exists() and path.read_bytes().count(b"\n") >= lines:
                proc.send_signal(sig)
                break
            time.sleep(0.01)
        rc = proc.wait(timeout=120)
    return rc, log.read_text()


def test_a_killed_run_resumes_and_does_every_photo_exactly_once(astronaut_faces, tmp_path, tiny_checkpoint):
    src, out, ref = _photos(tmp_path / "in", astronaut_faces, 12), tmp_path / "out", tmp_path / "ref"
    cmd = _cli(src, "-o", out, "--checkpoint", tiny_checkpoint, "--workers", "1", "--batch-size", "2",
               "--no-cnn-fallback", *FORCE)
    rc, _ = _run_until_lines(cmd, out, 3, signal.SIGKILL)
    assert rc == -signal.SIGKILL
    before = {r["input"]: r["time"] for r in _manifest(out)}
    assert 3 <= len(before) < 12
    # as if killed in the middle of a write, and with a torn manifest line
    (out / ".011.png.k1ll3d_x.tmp").write_bytes(b"half a png")
    with open(out / "manifest.jsonl", "ab") as f:
        f.write(b'{"input": "/torn", "sta')

    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(before)} already done by an earlier run" in proc.stdout
    lines = _manifest(out)
    assert sorted(Path(r["input"]).name for r in lines) == [f"{i:03d}.png" for i in range(12)]
    assert all(r["time"] == before[r["input"]] for r in lines if r["input"] in before)  # not redone
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]

    assert main(["remove", str(src), "-o", str(ref), "--checkpoint", str(tiny_checkpoint), "--workers", "0",
                 "--no-cnn-fallback", *FORCE]) == 0
    assert _files(out) == _files(ref)


def test_sigterm_stops_cleanly_between_photos(astronaut_faces, tmp_path, tiny_checkpoint):
    src, out = _photos(tmp_path / "in", astronaut_faces, 12), tmp_path / "out"
    cmd = _cli(src, "-o", out, "--checkpoint", tiny_checkpoint, "--workers", "1", "--batch-size", "1",
               "--no-cnn-fallback", *FORCE)
    rc, stderr = _run_until_lines(cmd, out, 2, signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM and "Traceback" not in stderr
    assert "stopped by SIGTERM" in stderr and "rerun the same command" in stderr
    lines = _manifest(out)
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]
    assert {p.name for p in out.iterdir()} == {"manifest.jsonl"} | {r["output"] for r in lines}


def test_two_processes_under_torchrun_equal_one(astronaut_faces, tmp_path, tiny_checkpoint):
    src, out, ref = _photos(tmp_path / "in", astronaut_faces, 7), tmp_path / "out", tmp_path / "ref"
    (src / "junk.jpg").write_bytes(b"not a jpeg")
    # batches of one face: a face's result then depends on nothing else (float sums over a batch
    # can round differently in the last bit), so both runs must give the same bytes
    args = ["--checkpoint", str(tiny_checkpoint), "--workers", "0", "--batch-size", "1", "--no-cnn-fallback", *FORCE]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
           "byeglasses", "remove", str(src), "-o", str(out), *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.stdout.count("done: 8 input(s): 7 with glasses removed") == 1, proc.stdout + proc.stderr
    lines = _manifest(out)
    assert sorted(Path(r["input"]).name for r in lines) == sorted(p.name for p in src.iterdir())
    assert {r["rank"] for r in lines} == {0, 1}
    assert not list(out.glob("manifest.part-*"))

    one = subprocess.run(_cli(src, "-o", ref, *args), cwd=ROOT, env=_env(), capture_output=True, text=True,
                         timeout=300)
    assert one.returncode == 1, one.stderr
    assert _files(out) == _files(ref)
    strip = lambda r: {k: v for k, v in r.items() if k not in ("time", "ms", "rank")}  # noqa: E731
    assert [strip(r) for r in lines] == [strip(r) for r in _manifest(ref)]


def test_shards_of_a_job_array_merge_into_one_manifest(astronaut_faces, tmp_path, tiny_checkpoint, capsys):
    src, out = _photos(tmp_path / "in", astronaut_faces, 5), tmp_path / "out"
    base = ["remove", str(src), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--workers", "0", *FORCE]
    assert main(base + ["--shard", "1/2"]) == 0
    assert "2 not yet in the manifest (other shards)" not in capsys.readouterr().out
    assert sorted(Path(r["input"]).name for r in _manifest(out)) == ["001.png", "003.png"]
    assert main(base + ["--shard", "0/2"]) == 0
    assert sorted(Path(r["input"]).name for r in _manifest(out)) == [f"{i:03d}.png" for i in range(5)]
    assert not list(out.glob("manifest.part-*"))
    assert main(base + ["--shard", "2/2"]) == 2
    assert "--shard must be K/N with 0 <= K < N" in capsys.readouterr().err


def test_extra_outputs_never_share_a_path(astronaut, tmp_path, tiny_checkpoint):
    """Issue 11.2: a.jpg and a.png both want a.side-by-side.jpg; a.jpg's mask a.glasses.png is the
    name of the photo a.glasses.png's output."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(astronaut).save(src / "a.jpg", quality=90)
    Image.fromarray(astronaut[:, ::-1]).save(src / "a.png")
    Image.fromarray(np.roll(astronaut, 8, axis=1)).save(src / "a.glasses.png")
    assert main(["remove", str(src), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--workers", "0",
                 "--side-by-side", "--save-masks", "--min-face", "60", *FORCE]) in (0, 1)
    lines = _manifest(out)
    names = [n for r in lines for n in [r["output"], *r["extras"].values()] if n]
    assert len(names) == len(set(names)) and set(names) <= {p.name for p in out.iterdir()}
    by = {Path(r["input"]).name: r for r in lines}
    assert by["a.jpg"]["extras"]["side-by-side"] == "a.jpg.side-by-side.jpg"
    assert by["a.png"]["extras"]["side-by-side"] == "a.png.side-by-side.jpg"
    assert by["a.glasses.png"]["output"] == "a.glasses.png"
    assert Image.open(out / "a.glasses.png").size == (512, 512) and Image.open(out / "a.glasses.png").mode == "RGB"


def test_a_file_already_in_outdir_is_replaced_only_with_overwrite(astronaut, tmp_path, tiny_checkpoint, capsys):
    """Issue 11.3."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    Image.fromarray(astronaut).save(src / "a.png")
    (out / "a.png").write_bytes(b"the user's own file")
    args = ["remove", str(src), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--workers", "0", *FORCE]
    assert main(args) == 1
    assert "already exists and no earlier run wrote it" in capsys.readouterr().err
    assert (out / "a.png").read_bytes() == b"the user's own file"
    assert main(args + ["--overwrite"]) == 0
    Image.open(out / "a.png").load()


def test_a_jpeg_cut_short_by_a_file_size_limit_is_reported_not_kept(astronaut, tmp_path, tiny_checkpoint):
    """Issue 11.1: `ulimit -f` (or a full disk) truncates the JPEG without an error from Pillow."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(astronaut).save(src / "photo.jpg", quality=95)
    limit = 40_000  # bytes: the manifest line fits, the ~100 kB JPEG does not

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(_cli(src, "-o", out, "--checkpoint", tiny_checkpoint, "--workers", "0", *FORCE),
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=300, preexec_fn=small_files)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"cannot write {out / 'photo.jpg'}" in proc.stderr and "Traceback" not in proc.stderr
    assert ".tmp" not in proc.stderr
    assert {p.name for p in out.iterdir()} == {"manifest.jsonl"}
    assert _manifest(out)[0]["status"] == "failed"


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_outputs_get_the_mode_the_umask_allows(astronaut, tmp_path, tiny_checkpoint, umask):
    """Issue 11.8: outputs were 0600 whatever the umask."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    Image.fromarray(astronaut).save(src / "a.png")
    Image.fromarray(astronaut).save(src / "b.jpg")
    old = os.umask(umask)
    try:
        assert main(["remove", str(src / "a.png"), "-o", str(out), "--checkpoint", str(tiny_checkpoint),
                     "--workers", "0", *FORCE]) == 0
        assert main(["remove", str(src / "b.jpg"), "-o", str(out), "--checkpoint", str(tiny_checkpoint),
                     "--workers", "0", "--glasses-threshold", "0", "--min-area", "1"]) == 0  # copied unchanged
    finally:
        os.umask(old)
    for name in ("a.png", "b.jpg", "manifest.jsonl"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_a_read_only_outdir_is_found_before_any_model_work(astronaut, tmp_path, capsys):
    """Issue 11.11: the checkpoint does not exist, so loading it first would say so instead."""
    if not Path("/sys/kernel").is_dir():
        pytest.skip("needs the read-only /sys of Linux")
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    rc = main(["remove", str(tmp_path / "a.png"), "-o", "/sys/byeglasses-out", "--checkpoint",
               str(tmp_path / "absent.safetensors")])
    assert rc == 2
    assert "--outdir /sys/byeglasses-out is not writable" in capsys.readouterr().err


def test_write_errors_are_named_for_what_they_are():
    """Issue 11.11: a disk-full error was counted as 'unreadable, or no face' and named the temp file."""
    from byeglasses.pipeline.batch import _write_error

    message = _write_error(Path("in/a.jpg"), OSError(errno.ENOSPC, "No space left", "out/.a.jpg.x1y2z3ab.tmp"))
    assert message == "in/a.jpg: cannot write out/a.jpg: no space left on the device; nothing written"
    message = _write_error(Path("in/a.jpg"), PermissionError(errno.EACCES, "Permission denied", "out/a.jpg"))
    assert "cannot write out/a.jpg: permission denied" in message


def test_broken_links_and_subfolders_in_an_input_folder_are_reported(astronaut, tmp_path, tiny_checkpoint,
                                                                      capsys):
    """Issue 11.11: they were skipped without a word."""
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "more").mkdir(parents=True)
    Image.fromarray(astronaut).save(src / "a.png")
    (src / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    assert main(["remove", str(src), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--workers", "0",
                 *FORCE]) == 1
    err = capsys.readouterr().err
    assert f"{src / 'more'}: subfolder not searched" in err
    assert f"{src / 'gone.jpg'}: no such file" in err


def test_batched_extra_passes_equal_each_photo_alone(astronaut_faces, tmp_path, tiny_checkpoint, monkeypatch):
    """The second and third passes of a batch run the classifier and the generator once on the
    faces of all its photos; every output equals what `GlassesRemover.remove` gives that photo alone
    (up to rounding)."""
    from byeglasses import GlassesRemover
    from byeglasses.synth.cache import read_rgb

    calls = []
    generate = GlassesRemover.classify_and_generate

    def counted(self, crops, timings):
        calls.append(len(crops))
        return generate(self, crops, timings)

    monkeypatch.setattr(GlassesRemover, "classify_and_generate", counted)
    src, out = _photos(tmp_path / "in", astronaut_faces, 5), tmp_path / "out"
    assert main(["remove", str(src), "-o", str(out), "--checkpoint", str(tiny_checkpoint), "--workers", "0",
                 "--batch-size", "4", "--passes", "3", *FORCE]) == 0
    assert calls == [4, 4, 4, 1, 1, 1]  # two batches (4 photos, then 1), three passes each
    calls.clear()
    remover = GlassesRemover(tiny_checkpoint, glasses_threshold=0.0, min_area=0.0, min_change=0.0, passes=3)
    for name in sorted(p.name for p in src.iterdir()):
        result = remover.remove(read_rgb(src / name))
        assert result.faces[0].passes == 3
        batch_out = np.asarray(Image.open(out / name).convert("RGB")).astype(int)
        # equal up to the generator's rounding in the last bit with other batch sizes (docs/pipeline.md)
        assert np.abs(batch_out - result.image).max() <= 1, name
    assert calls == [1, 1, 1] * 5  # alone: one face per call


def test_a_failing_batched_pass_falls_back_to_each_photo(astronaut_faces, tmp_path, tiny_checkpoint, monkeypatch,
                                                          capsys):
    """If the extra passes of a whole batch fail (say, out of GPU memory), each photo is retried alone,
    and a photo that fails alone is reported by name while the others are written."""
    from byeglasses import GlassesRemover

    many = GlassesRemover.more_passes_many

    def flaky(self, results, faces):
        if len(results) > 1:
            raise RuntimeError("out of memory")
        return many(self, results, faces)

    monkeypatch.setattr(GlassesRemover, "more_passes_many", flaky)
    src, out, ref = _photos(tmp_path / "in", astronaut_faces, 3), tmp_path / "out", tmp_path / "ref"
    args = ["--checkpoint", str(tiny_checkpoint), "--workers", "0", "--passes", "2", *FORCE]
    assert main(["remove", str(src), "-o", str(out), "--batch-size", "3", *args]) == 0
    assert main(["remove", str(src), "-o", str(ref), "--batch-size", "1", *args]) == 0
    assert _files(out) == _files(ref)

    original = GlassesRemover.more_passes
    first_box = GlassesRemover(tiny_checkpoint).detect(np.asarray(Image.open(src / "000.png").convert("RGB")))[0].box

    def one_bad(self, result, faces):
        if faces[0].box == first_box:
            raise RuntimeError("this photo broke")
        return original(self, result, faces)

    monkeypatch.setattr(GlassesRemover, "more_passes", one_bad)
    bad = tmp_path / "bad"
    assert main(["remove", str(src), "-o", str(bad), "--batch-size", "3", *args]) == 1
    lines = {Path(r["input"]).name: r for r in _manifest(bad)}
    assert lines["000.png"]["status"] == "failed" and "this photo broke" in lines["000.png"]["reason"]
    assert lines["001.png"]["status"] == lines["002.png"]["status"] == "removed"
