"""Training-pair synthesis: determinism, exact masks, every glasses family, landmark cache, datasets, CLI."""

import argparse
import json
import os
import pickle
from dataclasses import asdict
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from byeglasses.synth import FRAME_FAMILIES, LENS_SHAPES, LENS_TYPES, GlassesDistribution, GlassesParams
from byeglasses.synth.cache import default_cache_path, landmark_cache
from byeglasses.synth.dataset import SynthFaceDataset, SynthFolderDataset
from byeglasses.synth.facemask import face_shape_mask
from byeglasses.synth.preview import astronaut_face
from byeglasses.synth.render import synthesize

DATA = Path(__file__).resolve().parents[2] / "shared/data/celebahq256"


@pytest.fixture(scope="module")
def astro():
    return astronaut_face(256)


@pytest.fixture(scope="module")
def faces_dir(tmp_path_factory, astro):
    """Two astronaut faces and three bad files: zero-byte, not an image, no face (flat grey)."""
    d = tmp_path_factory.mktemp("faces")
    face = astro[0]
    cv2.imwrite(str(d / "a.jpg"), face[:, :, ::-1])
    cv2.imwrite(str(d / "b.png"), np.ascontiguousarray(face[:, ::-1, ::-1]))  # mirrored
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.jpg").write_text("not an image")
    cv2.imwrite(str(d / "grey.png"), np.full((256, 256, 3), 128, np.uint8))
    return d


def only(**weights):
    """A distribution forced to one shape / frame / lens family."""
    dist = GlassesDistribution()
    for key, name in weights.items():
        setattr(dist, f"{key}_weights", {name: 1.0})
    return dist


def check_sample(s, face):
    assert s.x.dtype == np.uint8 and s.x.shape == face.shape
    assert np.array_equal(s.y, face)
    assert s.glasses_mask.dtype == np.uint8 and set(np.unique(s.glasses_mask)) <= {0, 1}
    assert set(np.unique(s.face_mask)) <= {0, 1}
    out = s.glasses_mask == 0
    assert np.array_equal(s.x[out], s.y[out]), "pixels outside the glasses mask changed"
    inside = s.glasses_mask > 0
    assert inside.sum() > 100
    return np.abs(s.x[inside].astype(int) - s.y[inside]).mean()


def test_same_seed_same_pair(astro):
    face, lm = astro
    a, b, c = synthesize(face, lm, 7), synthesize(face, lm, 7), synthesize(face, lm, 8)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.glasses_mask, b.glasses_mask)
    assert a.params == b.params
    assert a.params != c.params and not np.array_equal(a.x, c.x)


def test_outside_mask_exact_and_inside_changed(astro):
    face, lm = astro
    diffs = [check_sample(synthesize(face, lm, seed), face) for seed in range(40)]
    assert np.mean(diffs) > 5


@pytest.mark.parametrize("shape", LENS_SHAPES)
def test_every_lens_shape_renders(astro, shape):
    face, lm = astro
    for seed in range(3):
        s = synthesize(face, lm, seed, dist=only(shape=shape))
        assert s.params.shape == shape
        check_sample(s, face)


@pytest.mark.parametrize("family", [("frame", f) for f in FRAME_FAMILIES] + [("lens", t) for t in LENS_TYPES])
def test_every_frame_and_lens_family_renders(astro, family):
    face, lm = astro
    key, name = family
    dist = only(**{key: name, "shape": "rectangle"})
    s = synthesize(face, lm, 3, dist=dist)
    assert getattr(s.params, key) == name
    assert check_sample(s, face) > 1


def test_dark_lenses_hide_the_eyes(astro):
    face, lm = astro
    dist = only(lens="sunglasses", shape="round")
    dist.glare_count = (0, 0)
    s = synthesize(face, lm, 0, dist=dist)
    x, y = np.round(lm[36:42].mean(0)).astype(int)
    assert s.glasses_mask[y - 6:y + 7, x - 8:x + 9].all()
    patch_x, patch_y = s.x[y - 6:y + 7, x - 8:x + 9].astype(float), s.y[y - 6:y + 7, x - 8:x + 9].astype(float)
    assert patch_x.std() < 0.3 * patch_y.std() and patch_x.mean() < patch_y.mean()


def test_params_json_round_trip(astro):
    face, lm = astro
    s = synthesize(face, lm, 11)
    d = json.loads(json.dumps(asdict(s.params)))
    again = synthesize(face, lm, 999, params=GlassesParams.from_dict(d))
    assert np.array_equal(again.x, s.x)


def test_dark_lenses_reflect_a_scene(astro):
    face, lm = astro
    dist = GlassesDistribution.dark()
    params = [dist.sample(np.random.default_rng(seed)) for seed in range(200)]
    dark = sum(p.lens in ("sunglasses", "mirrored", "gradient") for p in params)
    assert dark > 120  # mostly dark lenses
    assert all((p.scene > 0) == (p.lens in dist.scene_lenses) for p in params)
    assert all(0.1 <= p.scene <= 0.55 for p in params if p.scene > 0)
    # the ordinary mix draws no scene, and its draws are what they were before the scene existed
    assert all(GlassesDistribution().sample(np.random.default_rng(seed)).scene == 0 for seed in range(50))
    p = next(p for p in params if p.lens == "sunglasses" and p.scene > 0.3)
    p.glares = []
    with_scene = synthesize(face, lm, 0, params=p)
    check_sample(with_scene, face)
    plain = GlassesParams.from_dict({**asdict(p), "scene": 0.0})
    without = synthesize(face, lm, 0, params=plain)
    # the scene lies on the lenses only: the same pixels change, and they change by a lot
    assert np.array_equal(with_scene.glasses_mask, without.glasses_mask)
    lenses = np.abs(with_scene.x.astype(int) - without.x).max(2) > 0
    assert lenses.sum() > 500 and with_scene.glasses_mask[lenses].all()
    assert np.abs(with_scene.x[lenses].astype(int) - without.x[lenses]).mean() > 10
    # the scene is part of the recorded parameters: the same pair again from JSON
    again = synthesize(face, lm, 1, params=GlassesParams.from_dict(json.loads(json.dumps(asdict(p)))))
    assert np.array_equal(again.x, with_scene.x)
    other = synthesize(face, lm, 0, params=GlassesParams.from_dict({**asdict(p), "scene_seed": p.scene_seed + 1}))
    assert not np.array_equal(other.x, with_scene.x)


def test_face_shape_mask_covers_face_and_forehead(astro):
    face, lm = astro
    m = face_shape_mask(lm, 256, 256)
    assert m.dtype == np.float32 and m.shape == (256, 256)
    for i in (30, 36, 45, 57, 8 - 1):  # nose, eye corners, mouth, near the chin
        x, y = np.round(lm[i]).astype(int)
        assert m[y, x] > 0.5
    brow_top = int(lm[17:27, 1].min())
    x_mid = int(lm[27, 0])
    assert m[brow_top - 10, x_mid] > 0.5, "forehead above the brows is face"
    assert m[0, 0] == 0 and m[255, 255] == 0


def test_user_rgba_glasses_image(astro, tmp_path):
    face, lm = astro
    rgba = np.zeros((100, 300, 4), np.uint8)
    for cx in (75, 225):
        cv2.ellipse(rgba, (cx, 45), (60, 35), 0, 0, 360, (30, 30, 30, 255), 6)
    path = tmp_path / "g.png"
    cv2.imwrite(str(path), rgba)
    dist = GlassesDistribution(image_paths=(str(path),), image_probability=1.0)
    s = synthesize(face, lm, 0, dist=dist)
    assert s.params.image == str(path)
    assert check_sample(s, face) > 5
    eye = np.round(lm[36:42].mean(0)).astype(int)
    assert s.glasses_mask[eye[1], eye[0]] == 0, "the transparent lens area is not glasses"


def test_landmark_cache_skips_bad_files_and_invalidates(faces_dir, tmp_path, monkeypatch):
    cache_path = tmp_path / "lm.npz"
    c = landmark_cache(faces_dir, cache_path, progress=False)
    assert sorted(c.landmarks) == ["a.jpg", "b.png"]
    assert c.landmarks["a.jpg"].shape == (68, 2)
    assert "empty" in c.skipped["empty.jpg"]
    assert "not a readable image" in c.skipped["text.jpg"]
    assert "no face" in c.skipped["grey.png"]
    assert c.computed == 5 and cache_path.is_file()
    assert landmark_cache(faces_dir, cache_path, progress=False).computed == 0

    # a changed image (tmp copy of the folder) is recomputed, alone
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in faces_dir.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    c1 = landmark_cache(copy, tmp_path / "c.npz", progress=False)
    img = cv2.imread(str(copy / "a.jpg"))
    cv2.imwrite(str(copy / "a.jpg"), cv2.resize(img, (200, 200)))
    os.utime(copy / "a.jpg", ns=(1, 10**9))
    c2 = landmark_cache(copy, tmp_path / "c.npz", progress=False)
    assert c2.computed == 1
    assert not np.allclose(c1.landmarks["a.jpg"], c2.landmarks["a.jpg"])

    monkeypatch.setenv("BYEGLASSES_CACHE", str(tmp_path / "env"))
    assert str(default_cache_path(faces_dir)).startswith(str(tmp_path / "env"))
    assert default_cache_path(faces_dir) != default_cache_path(copy)


def test_landmark_cache_follows_content_not_mtime(faces_dir, tmp_path):
    """A copied or touched folder (new mtimes, same bytes) is not computed again, nor are its decoded
    faces; a cache written before digests were stored gains them without recomputing."""
    from byeglasses.synth.cache import LandmarkCache
    from byeglasses.synth.facecache import face_cache_path

    copy = tmp_path / "copy"
    copy.mkdir()
    for p in faces_dir.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    cache_path = tmp_path / "c.npz"
    c1 = landmark_cache(copy, cache_path, progress=False)
    names = sorted(c1.landmarks)
    key = lambda c: face_cache_path(cache_path, 64, names, [c.content_key(n) for n in names],
                                    np.stack([c.landmarks[n] for n in names]))
    for p in copy.iterdir():
        os.utime(p, ns=(10**9, 2 * 10**9))
    c2 = landmark_cache(copy, cache_path, progress=False)
    assert c2.computed == 0 and c2.revalidated == 5
    assert key(c2) == key(c1) and c2.skipped == c1.skipped
    assert landmark_cache(copy, cache_path, progress=False).revalidated == 0  # the new mtimes were saved

    old = LandmarkCache.load(copy, cache_path)
    old.digests.clear()
    old.save()
    c3 = landmark_cache(copy, cache_path, progress=False)
    assert c3.computed == 0 and sorted(c3.digests) == sorted(c1.digests)
    assert LandmarkCache.load(copy, cache_path).digests == c1.digests

    (copy / "b.png").write_bytes((copy / "a.jpg").read_bytes())  # same name, other picture
    os.utime(copy / "b.png", ns=(10**9, 2 * 10**9))
    c4 = landmark_cache(copy, cache_path, progress=False)
    assert c4.computed == 1 and np.allclose(c4.landmarks["b.png"], c1.landmarks["a.jpg"])
    assert key(c4) != key(c1)


def test_synth_face_dataset_layout_and_determinism(faces_dir, tmp_path):
    ds = SynthFaceDataset(faces_dir, 64, seed=3, cache_path=tmp_path / "lm.npz", progress=False)
    assert len(ds) == 2 and set(ds.skipped) == {"empty.jpg", "text.jpg", "grey.png"}
    item = ds[1]
    assert item["x"].shape == (3, 64, 64) and item["x"].dtype == torch.float32
    assert item["y"].shape == (3, 64, 64) and item["mask"].shape == (2, 64, 64) and item["index"] == 1
    assert item["x"].min() >= -1 and item["x"].max() <= 1
    assert set(torch.unique(item["mask"]).tolist()) <= {0.0, 1.0}
    assert item["mask"][0].sum() > 0 and item["mask"][1].sum() > item["mask"][0].sum() * 0.5
    outside = item["mask"][0] == 0
    assert torch.equal(item["x"][:, outside], item["y"][:, outside])

    again = SynthFaceDataset(faces_dir, 64, seed=3, cache_path=tmp_path / "lm.npz", progress=False)
    assert torch.equal(again[1]["x"], item["x"])
    ds.set_epoch(1)
    assert not torch.equal(ds[1]["x"], item["x"])
    again.set_epoch(1)
    assert torch.equal(again[1]["x"], ds[1]["x"])

    pickle.dumps(ds)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, num_workers=2)
    batch = next(iter(loader))
    assert batch["x"].shape == (2, 3, 64, 64) and batch["mask"].shape == (2, 2, 64, 64)
    assert torch.equal(batch["x"][1], ds[1]["x"])


def _synth_args(faces, out, *extra):
    from byeglasses.cli import synth as cli

    parser = argparse.ArgumentParser()
    cli.configure_parser(parser)
    return cli, parser.parse_args([str(faces), str(out), *extra])


def test_cli_writes_pairs_manifest_and_preview(faces_dir, tmp_path):
    out, preview = tmp_path / "out", tmp_path / "sheet.png"
    cli, args = _synth_args(faces_dir, out, "--count", "3", "--resolution", "64", "--seed", "5",
                            "--preview", str(preview), "--cache", str(tmp_path / "lm.npz"))
    assert cli.run(args) == 0
    for sub in ("x", "y", "glasses-mask", "face-mask"):
        assert sorted(p.name for p in (out / sub).iterdir()) == ["000000.png", "000001.png", "000002.png"]
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert len(lines) == 3
    rec = json.loads(lines[2])
    assert rec["source"] == "a.jpg" and rec["epoch"] == 1
    GlassesParams.from_dict(rec["params"])
    assert cv2.imread(str(preview)) is not None

    folder = SynthFolderDataset(out, 64)
    item = folder[0]
    assert item["x"].shape == (3, 64, 64) and item["mask"].shape == (2, 64, 64) and item["index"] == 0
    fresh = SynthFaceDataset(faces_dir, 64, seed=5, cache_path=tmp_path / "lm.npz", progress=False)
    assert torch.equal(item["x"], fresh[0]["x"]) and torch.equal(item["mask"], fresh[0]["mask"])
    assert SynthFolderDataset(out, 32)[2]["x"].shape == (3, 32, 32)


def test_cli_refuses_to_write_into_the_faces_folder(faces_dir):
    from byeglasses.errors import InputError

    cli, args = _synth_args(faces_dir, faces_dir, "--count", "1")
    with pytest.raises(InputError):
        cli.run(args)
    assert not (faces_dir / "x").exists()


def test_non_256_photo(astro):
    """The demo's case: the full 512-px astronaut photo with its own landmarks."""
    from skimage.data import astronaut

    from byeglasses.pipeline.detect import detect_faces

    img = astronaut()
    lm = detect_faces(img)[0].landmarks
    s = synthesize(img, lm, 0)
    check_sample(s, img)
    ys, xs = np.nonzero(s.glasses_mask)
    assert lm[0, 0] - 20 < xs.mean() < lm[16, 0] + 20 and lm[19, 1] - 20 < ys.mean() < lm[30, 1]


@pytest.mark.skipif(not (DATA / "test").is_dir(), reason=f"CelebA-HQ data absent ({DATA})")
def test_celebahq_faces(tmp_path):
    names = sorted(os.listdir(DATA / "test"))[:4]
    ds = SynthFaceDataset(DATA / "test", 128, seed=0, cache_path=tmp_path / "lm.npz", files=names, progress=False)
    assert len(ds) + len(ds.skipped) == 4
    for i in range(len(ds)):
        s = ds.sample(i)
        check_sample(s, s.y)


def test_dataset_negatives_have_no_glasses(astronaut_faces):
    from byeglasses.synth.dataset import SynthFaceDataset

    all_neg = SynthFaceDataset(astronaut_faces, 64, seed=0, no_glasses=1.0, progress=False)
    item = all_neg[0]
    assert torch.equal(item["x"], item["y"]) and item["mask"][0].sum() == 0 and item["mask"][1].sum() > 0
    some = SynthFaceDataset(astronaut_faces, 64, seed=0, no_glasses=0.5, progress=False)
    none = SynthFaceDataset(astronaut_faces, 64, seed=0, progress=False)
    flags = [torch.equal(some[i]["x"], some[i]["y"]) for i in range(len(some))]
    assert any(flags) and not all(flags)
    # the samples that keep their glasses are the same glasses as without negatives
    for i, neg in enumerate(flags):
        if not neg:
            assert torch.equal(some[i]["x"], none[i]["x"])


def test_decoded_cache_gives_the_same_pairs(faces_dir, tmp_path):
    """Faces decoded once into the cache file give exactly the pairs of faces decoded every time."""
    kw = dict(seed=4, cache_path=tmp_path / "lm.npz", progress=False, no_glasses=0.5)
    plain = SynthFaceDataset(faces_dir, 64, **kw)
    cached = SynthFaceDataset(faces_dir, 64, decoded_cache=True, **kw)
    files = sorted(p.name for p in tmp_path.glob("lm.faces64.*.npy"))
    assert len(files) == 1 and cached.faces.path.endswith(files[0])
    negatives = 0
    for epoch in range(3):
        plain.set_epoch(epoch)
        cached.set_epoch(epoch)
        for i in range(len(plain)):
            a, b = plain[i], cached[i]
            for key in ("x", "y", "mask"):
                assert torch.equal(a[key], b[key]), (epoch, i, key)
            negatives += torch.equal(a["x"], a["y"])
    assert 0 < negatives < 6  # both kinds of sample were compared
    # a second dataset reuses the file; pickling (DataLoader workers) does not carry the faces along
    again = SynthFaceDataset(faces_dir, 64, decoded_cache=True, **kw)
    assert again.faces.path == cached.faces.path
    assert len(pickle.dumps(again)) < 20_000
    batch = next(iter(torch.utils.data.DataLoader(again, batch_size=2, num_workers=2)))
    plain.set_epoch(0)
    assert torch.equal(batch["x"][1], plain[1]["x"])


def test_decoded_cache_is_rebuilt_when_a_face_changes(faces_dir, tmp_path):
    import shutil

    folder = tmp_path / "faces"
    shutil.copytree(faces_dir, folder)
    kw = dict(seed=1, cache_path=tmp_path / "lm.npz", progress=False)
    before = SynthFaceDataset(folder, 64, decoded_cache=True, **kw)
    old_path, old_x = before.faces.path, before[0]["x"]
    img = cv2.imread(str(folder / "a.jpg"))
    cv2.imwrite(str(folder / "a.jpg"), cv2.resize(img, (200, 200))[:, ::-1].copy())  # now mirrored
    os.utime(folder / "a.jpg", ns=(1, 10**9))
    after = SynthFaceDataset(folder, 64, decoded_cache=True, **kw)
    assert after.faces.path != old_path and not os.path.exists(old_path)  # rebuilt, the stale file removed
    fresh = SynthFaceDataset(folder, 64, **kw)
    assert not torch.equal(after[0]["y"], before[0]["y"]) or not torch.equal(after[0]["x"], old_x)
    assert torch.equal(after[0]["x"], fresh[0]["x"]) and torch.equal(after[0]["mask"], fresh[0]["mask"])
    # another subset of the same folder gets its own file and leaves this one alone
    SynthFaceDataset(folder, 64, decoded_cache=True, files=["b.png"], **kw)
    assert os.path.exists(after.faces.path)


def test_uint8_items_give_the_float_values_on_the_device(faces_dir, tmp_path):
    from byeglasses.synth.dataset import batch_to_device

    kw = dict(seed=2, cache_path=tmp_path / "lm.npz", progress=False, decoded_cache=True)
    floats = SynthFaceDataset(faces_dir, 64, **kw)
    u8 = SynthFaceDataset(faces_dir, 64, uint8=True, **kw)
    a = torch.utils.data.default_collate([floats[0], floats[1]])
    b = torch.utils.data.default_collate([u8[0], u8[1]])
    assert b["x"].dtype == torch.uint8 and b["x"].shape == (2, 3, 64, 64) and b["mask"].dtype == torch.uint8
    fa, fb = batch_to_device(a, "cpu"), batch_to_device(b, "cpu")
    for key in ("x", "y", "mask"):
        assert fb[key].dtype == torch.float32 and torch.equal(fa[key], fb[key]), key


def test_glasses_draws_match_rng_choice():
    """The fast weighted draw picks what numpy's rng.choice picks and leaves the stream where it does."""
    from byeglasses.synth.glasses import _pick

    rng = np.random.default_rng(0)
    for seed in range(300):
        weights = {f"k{i}": float(w) for i, w in enumerate(rng.uniform(0.1, 3, int(rng.integers(2, 9))))}
        r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
        keys, p = list(weights), np.array(list(weights.values())) / sum(weights.values())
        assert _pick(r1, weights) == str(r2.choice(keys, p=p))
        assert r1.random() == r2.random()
