"""The benchmark and tool scripts treat bad input as the `byeglasses` command does: one line on
stderr naming the input and the problem, a non-zero exit, no traceback (errors.run_script)."""

import errno
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from byeglasses.errors import InputError, SettingError, run_script
from helpers import load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in [*ROOT.glob("benchmarks/*.py"), *ROOT.glob("tools/*.py"), ROOT / "tools/gpu_continue/pack.py"]
                 if 'if __name__ == "__main__":' in p.read_text())


def test_run_script_turns_errors_into_one_line_and_a_status(capsys):
    def bad_input():
        raise InputError("photos/a.jpg: not an image")

    def failed_write():
        raise OSError(errno.ENOSPC, "No space left on device", "out/table.md")

    assert run_script(lambda: None, "s.py") == 0
    assert run_script(lambda: 3, "s.py") == 3
    assert run_script(bad_input, "s.py") == 2
    assert capsys.readouterr().err == "s.py: error: photos/a.jpg: not an image\n"
    assert run_script(failed_write, "s.py") == 1
    assert capsys.readouterr().err == "s.py: error: out/table.md: No space left on device\n"
    def bad_setting():
        raise SettingError("min_face", "must be positive, got -5")

    assert run_script(bad_setting, "byeglasses remove") == 2
    assert capsys.readouterr().err == "byeglasses remove: error: --min-face must be positive, got -5\n"
    with pytest.raises(ValueError):  # a bug is still a traceback: only the user's problems are caught
        run_script(lambda: int("x"), "s.py")


def test_every_script_runs_through_run_script():
    assert len(SCRIPTS) >= 20
    for script in SCRIPTS:
        tail = script.read_text().rsplit('if __name__ == "__main__":', 1)[1]
        assert f'sys.exit(run_script(main, "{script.name}"))' in tail, script


@pytest.mark.parametrize("argv, names", [
    (["benchmarks/bench_real.py", "--glasses", "{tmp}/nowhere", "--plain", "{tmp}"], "{tmp}/nowhere: not a folder"),
    (["benchmarks/bench_classifier.py", "--glasses", "{tmp}", "--plain", "{tmp}/nowhere"], "not a folder"),
    (["benchmarks/real_frames_paired.py", "{tmp}/nowhere", "--model", "a=default", "--model", "b=default"],
     "{tmp}/nowhere: not a folder"),
    (["benchmarks/fv_synthetic_glasses.py", "{tmp}/nowhere", "--out", "{tmp}/out.json"],
     "{tmp}/nowhere: has no plain"),
    (["tools/package_model.py", "{tmp}/none.safetensors", "--dst", "{tmp}/out.safetensors"],
     "{tmp}/none.safetensors: no such checkpoint file"),
])
def test_scripts_given_a_missing_input_say_so_in_one_line(tmp_path, argv, names):
    argv = [a.format(tmp=tmp_path) for a in argv]
    done = subprocess.run([sys.executable, str(ROOT / argv[0]), *argv[1:]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert names.format(tmp=tmp_path) in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"{Path(argv[0]).name}: error: ")
    assert not (tmp_path / "out.safetensors").exists()


def test_synthetic_glasses_benchmark_refuses_unknown_settings_before_any_work(tmp_path):
    (tmp_path / "plain").mkdir()
    (tmp_path / "pairs.json").write_text("{}")
    for settings, says in (("nonsense=1", "'nonsense' is not a removal setting"),
                           ("threshold=2", "threshold must be within 0..1")):
        done = subprocess.run([sys.executable, str(ROOT / "benchmarks/fv_synthetic_glasses.py"), str(tmp_path),
                               "--out", str(tmp_path / "out.json"), "--settings", settings],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and "Traceback" not in done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith(f"fv_synthetic_glasses.py: error: --settings {settings!r}: ") and says in last
        assert not (tmp_path / "out.json").exists()


def test_every_script_says_what_it_does_in_its_help(monkeypatch, capsys):
    """`--help` prints the script's whole docstring as written (its first paragraph used to be cut
    at the end of its first line, often mid-sentence), usage lines included."""
    import ast
    import runpy

    for script in SCRIPTS:
        doc = ast.get_docstring(ast.parse(script.read_text()), clean=False)
        monkeypatch.setattr(sys, "argv", [script.name, "--help"])
        monkeypatch.syspath_prepend(str(script.parent))  # as when run: its folder first (sibling modules)
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(script), run_name="__main__")
        assert done.value.code == 0, script
        out = capsys.readouterr().out
        assert doc.strip() in out, f"{script.name}: --help does not hold its docstring"


def test_synthetic_glasses_benchmark_knows_the_answer(celeba, tmp_path):
    """benchmarks/fv_synthetic_glasses.py on three fv-dev people: the lens kinds are the ones asked
    for, the clean photo is its own ceiling, and the oracle that puts back what the glasses hid
    lands nearer the clean photo than the glasses on."""
    import json

    pairs = json.loads((celeba / "fv-dev" / "pairs.json").read_text())
    chosen = {p: e for p, e in sorted(pairs.items()) if len(e["plain"]) >= 3}
    chosen = dict(list(chosen.items())[:3])
    (tmp_path / "fv" / "plain").mkdir(parents=True)
    for entry in chosen.values():
        for stem in entry["plain"]:
            (tmp_path / "fv" / "plain" / f"{stem}.jpg").symlink_to(celeba / "fv-dev" / "plain" / f"{stem}.jpg")
    (tmp_path / "fv" / "pairs.json").write_text(json.dumps(chosen))
    module = load_script("benchmarks/fv_synthetic_glasses.py")
    out = tmp_path / "synthetic.json"
    assert module.main([str(tmp_path / "fv"), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["people"] == 3 and not report["skipped"]
    for kind in module.KINDS:
        rows = report["rows"][kind]
        assert [r["params"]["lens"] for r in rows] == [kind] * 3
        for r in rows:
            assert r["to_clean"]["clean"] == 0.0
            assert r["to_clean"]["hidden restored"] < r["to_clean"]["glasses on"]
        figures = report["by_lens"][kind]
        assert figures["cost"]["mean"] == pytest.approx(
            np.mean([r["genuine"]["glasses on"] - r["genuine"]["clean"] for r in rows]), abs=1e-3)
        assert figures["glasses on"]["still_glasses"] > figures["after removal"]["still_glasses"]
    with pytest.raises(module.ByeGlassesError, match="exists"):
        module.main([str(tmp_path / "fv"), "--out", str(out)])
