"""Train the glasses classifier: glasses-free faces with and without synthesized glasses, plus real
glasses photos (no person of an evaluation set), each seen through jittered alignments."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, Sequence

import cv2
import numpy as np
import torch
from torch import nn

from ..errors import InputError
from ..model.classifier import CROP, GlassesClassifier, eye_band, save_classifier, to_input
from ..pipeline.geometry import estimate_alignment


def jittered_band(rgb: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator,
                  shift: float = 0.02, scale: float = 0.06, angle: float = 6.0) -> np.ndarray:
    """The eye band through a randomly perturbed alignment (landmark error, pose), maybe mirrored,
    with brightness/contrast jitter: (48, 96, 3) uint8."""
    a = estimate_alignment(landmarks, CROP).matrix
    c = CROP / 2
    rot = cv2.getRotationMatrix2D((c, c), rng.uniform(-angle, angle), 1.0 + rng.uniform(-scale, scale))
    rot[:, 2] += rng.uniform(-shift, shift, 2) * CROP
    matrix = np.hstack([rot[:, :2] @ a[:, :2], (rot[:, :2] @ a[:, 2] + rot[:, 2])[:, None]])
    crop = cv2.warpAffine(rgb, matrix, (CROP, CROP), flags=cv2.INTER_AREA if _scale(matrix) < 1 else cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT)
    band = eye_band(crop).astype(np.float32)
    if rng.random() < 0.5:
        band = band[:, ::-1]
    band = (band - 128) * rng.uniform(0.75, 1.25) + 128 + rng.uniform(-25, 25)
    band = band * rng.uniform(0.9, 1.1, 3)  # colour cast
    if rng.random() < 0.3:
        band = cv2.GaussianBlur(band, (0, 0), rng.uniform(0.3, 1.2))
    return np.clip(band, 0, 255).astype(np.uint8)


def _scale(matrix) -> float:
    return float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))


FADE = (0.2, 0.6)  # how much of the glasses a faded positive keeps


def synthetic_bands(faces_dir, count: int, seed: int, progress: bool = True, faded: float = 0.0):
    """(positives, negatives): eye bands of `count` faces with synthesized glasses and as they are.
    A share `faded` of the positives keep only FADE of the glasses (y + f (x - y)): the faded frames
    and ghosts that removal can leave still count as glasses."""
    from tqdm import tqdm

    from ..files import list_images
    from ..synth.cache import landmark_cache, read_rgb
    from ..synth.render import synthesize

    names = list_images(faces_dir)
    rng = np.random.default_rng(seed)
    names = [names[i] for i in sorted(rng.choice(len(names), min(count, len(names)), replace=False))]
    cache = landmark_cache(faces_dir, names=names, progress=progress)
    names = [n for n in names if n in cache.landmarks]
    pos, neg = [], []
    for i, n in enumerate(tqdm(names, desc="synthetic glasses", unit="face", disable=not progress)):
        face = read_rgb(Path(faces_dir) / n)
        lm = cache.landmarks[n]
        s = synthesize(face, lm, np.random.default_rng([seed, i]))
        x = s.x
        if faded > 0:
            fade = np.random.default_rng([seed, i, 2])
            if fade.random() < faded:
                f = fade.uniform(*FADE)
                x = np.clip(np.rint(s.y + f * (s.x.astype(np.float32) - s.y)), 0, 255).astype(np.uint8)
        r = np.random.default_rng([seed, i, 1])
        pos.append(jittered_band(x, lm, r))
        neg.append(jittered_band(s.y, lm, r))
    return np.stack(pos), np.stack(neg)


def real_bands(folders: Sequence, copies: int, seed: int, exclude: Sequence[str] = (), progress: bool = True):
    """Eye bands of real glasses photos, `copies` jittered views each, grouped per photo:
    (photos, copies, 48, 96, 3) uint8, and the photo names."""
    from ..files import list_images
    from ..synth.cache import landmark_cache, read_rgb

    out, names_out = [], []
    skip = set(exclude)
    for folder in folders:
        names = [n for n in list_images(folder) if n not in skip]
        cache = landmark_cache(folder, names=names, progress=progress)
        for n in names:
            if n not in cache.landmarks:
                continue
            rgb = read_rgb(Path(folder) / n)
            rng = np.random.default_rng([seed, len(names_out)])
            out.append(np.stack([jittered_band(rgb, cache.landmarks[n], rng) for _ in range(copies)]))
            names_out.append(f"{Path(folder).name}/{n}")
    if not out:
        raise InputError(f"no real glasses photo with a face in {', '.join(map(str, folders))}")
    return np.stack(out), names_out


def fit(bands: np.ndarray, labels: np.ndarray, weights: np.ndarray, epochs: int, seed: int,
        batch_size: int = 64, lr: float = 2e-3, width: int = 16, progress: bool = True) -> GlassesClassifier:
    from tqdm import tqdm

    torch.manual_seed(seed)
    model = GlassesClassifier(width)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * int(np.ceil(len(bands) / batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps)
    rng = np.random.default_rng(seed)
    lossf = nn.BCEWithLogitsLoss(reduction="none")
    bar = tqdm(total=steps, desc="classifier", unit="step", disable=not progress)
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(bands))
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            x = to_input(bands[idx])
            y = torch.from_numpy(labels[idx].astype(np.float32))
            w = torch.from_numpy(weights[idx].astype(np.float32))
            loss = (lossf(model(x), y) * w).sum() / w.sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    return model.eval()


@torch.inference_mode()
def predict(model: GlassesClassifier, bands: np.ndarray, batch: int = 256) -> np.ndarray:
    return np.concatenate([torch.sigmoid(model(to_input(bands[i:i + batch]))).numpy()
                           for i in range(0, len(bands), batch)]) if len(bands) else np.zeros(0)


def train_classifier(faces_dir, real_dirs: Sequence, out, count: int = 6000, real_copies: int = 20,
                     epochs: int = 4, seed: int = 0, exclude: Sequence[str] = (), progress: bool = True,
                     faded: float = 0.0) -> Dict:
    """Train and save the classifier; returns held-out accuracies (10% of faces, 15% of real photos)."""
    t0 = time.perf_counter()
    pos, neg = synthetic_bands(faces_dir, count, seed, progress, faded)
    real, real_names = real_bands(real_dirs, real_copies, seed, exclude, progress)
    rng = np.random.default_rng(seed)
    n_val = max(1, len(pos) // 10)
    r_perm = rng.permutation(len(real))
    r_val = r_perm[:max(1, int(0.15 * len(real)))]
    r_tr = r_perm[len(r_val):]
    tr_real = real[r_tr].reshape(-1, *real.shape[2:])
    bands = np.concatenate([pos[n_val:], neg[n_val:], tr_real])
    labels = np.concatenate([np.ones(len(pos) - n_val), np.zeros(len(neg) - n_val), np.ones(len(tr_real))])
    # the real photos are few: together they weigh as much as a quarter of the synthetic positives
    w_real = 0.25 * (len(pos) - n_val) / max(1, len(tr_real))
    weights = np.concatenate([np.ones(2 * (len(pos) - n_val)), np.full(len(tr_real), w_real)])
    model = fit(bands, labels, weights, epochs, seed, progress=progress)
    val = {
        "synthetic_glasses_recall": float((predict(model, pos[:n_val]) >= 0.5).mean()),
        "glasses_free_specificity": float((predict(model, neg[:n_val]) < 0.5).mean()),
        "real_glasses_recall": float((predict(model, real[r_val, 0]) >= 0.5).mean()),
        "held_out": {"faces": int(n_val), "real_photos": int(len(r_val))},
        "train": {"synthetic_pairs": int(len(pos) - n_val), "real_photos": int(len(r_tr)),
                  "real_copies": int(real_copies), "epochs": int(epochs), "seed": int(seed),
                  "faded": float(faded)},
        "seconds": time.perf_counter() - t0,
    }
    save_classifier(model, out, {"validation": __import__("json").dumps(val)})
    return val
