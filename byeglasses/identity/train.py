"""`byeglasses train-identity`: train the paper's ResNet-34 + ArcFace extractor on a folder with one
subfolder of face images per person, and report verification accuracy on held-out images."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..errors import InputError
from ..files import list_images
from .resnet import ArcFace, IdentityConfig, IdentityExtractor



@dataclass
class TrainIdentityParams:
    epochs: int = 20
    batch_size: int = 64
    resolution: int = 112  # images are brought to this canonical crop side
    val_fraction: float = 0.1  # of each person's images, held out for verification
    seed: int = 0
    lr: float = 0.1  # SGD, momentum 0.9, cosine decay (insightface's recipe)
    weight_decay: float = 5e-4
    scale: float = 64.0  # ArcFace s
    margin: float = 0.5  # ArcFace m
    align: bool = False  # detect and align faces with dlib first
    max_pairs: int = 3000  # same-person pairs per verification set (as many different-person pairs)
    model: IdentityConfig = field(default_factory=IdentityConfig)

    def __post_init__(self):
        from ..model.config import check_ranges

        check_ranges(self, {"epochs": (int, 1, None), "batch_size": (int, 2, 65536), "resolution": (int, 16, 4096),
                            "val_fraction": (float, 0, 1), "seed": (int, 0, 2 ** 32 - 1), "lr": (float, 0, 10),
                            "weight_decay": (float, 0, 1), "scale": (float, 0, 1000), "margin": (float, 0, 3.14),
                            "max_pairs": (int, 1, None)}, {"val_fraction": "above", "lr": "below", "scale": "below"})


@dataclass
class FaceSet:
    images: np.ndarray  # (N, R, R, 3) uint8
    labels: np.ndarray  # (N,) int64 person index
    names: List[str]  # person folder names
    skipped: List[Tuple[str, str]]  # (file, reason)


def _align(image: np.ndarray, resolution: int) -> Optional[np.ndarray]:
    import cv2

    from ..pipeline.detect import detect_faces
    from ..pipeline.template import template
    from ..pipeline.geometry import similarity_transform

    faces = detect_faces(image)
    if not faces:
        return None
    m = similarity_transform(faces[0].landmarks, template(resolution, 68))
    return cv2.warpAffine(image, m, (resolution, resolution), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT)


def load_face_folder(root: str, resolution: int, align: bool = False, progress: bool = True) -> FaceSet:
    """Every readable image under root/<person>/, resized (or aligned) to resolution x resolution."""
    from PIL import Image

    if not os.path.isdir(root):
        raise InputError(f"{root}: no such folder (expected one subfolder of face images per person)")
    people = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not d.startswith("."))
    files = {p: list_images(os.path.join(root, p)) for p in people}
    empty = [p for p in people if not files[p]]
    if empty:
        raise InputError(f"{root}: {len(empty)} person folder(s) hold no images: {', '.join(empty[:10])}"
                         f"{' ...' if len(empty) > 10 else ''}; remove them or add pictures")
    if len(people) < 2:
        raise InputError(f"{root}: found {len(people)} person folder(s); ArcFace training needs at least 2 "
                         "(one subfolder of face images per person)")
    images, labels, skipped = [], [], []
    jobs = [(i, p, f) for i, p in enumerate(people) for f in files[p]]
    for i, p, f in tqdm(jobs, desc="loading faces", unit="img", disable=not progress, file=sys.stderr):
        path = os.path.join(root, p, f)
        try:
            with Image.open(path) as im:
                img = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as e:
            skipped.append((path, f"unreadable ({e})"))
            continue
        if align:
            img = _align(img, resolution)
            if img is None:
                skipped.append((path, "no face found"))
                continue
        elif img.shape[:2] != (resolution, resolution):
            img = np.asarray(Image.fromarray(img).resize((resolution, resolution), Image.BILINEAR))
        images.append(img)
        labels.append(i)
    counts = np.bincount(labels, minlength=len(people)) if labels else np.zeros(len(people), int)
    if (counts > 0).sum() < 2:
        raise InputError(f"{root}: fewer than 2 people have usable images ({len(skipped)} skipped)")
    return FaceSet(np.stack(images), np.array(labels, dtype=np.int64), people, skipped)


def split_held_out(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of held-out images: round(fraction * n) of each person's n images, at least 2
    (so there are same-person pairs) when n >= 4, 1 when n is 2 or 3, none of a single image."""
    held = np.zeros(len(labels), bool)
    if fraction <= 0:
        return held
    for person in np.unique(labels):
        idx = np.flatnonzero(labels == person)
        n = len(idx)
        k = min(n - 2, max(2, int(round(fraction * n)))) if n >= 4 else min(1, n - 1)
        if k > 0:
            held[rng.choice(idx, k, replace=False)] = True
    return held


def verification_pairs(labels: np.ndarray, max_pairs: int, rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """(P, 2) index pairs and (P,) same-person flags: every same-person pair (at most max_pairs,
    sampled) and as many random different-person pairs, so chance is 50%."""
    same = [(a, b) for a in range(len(labels)) for b in range(a + 1, len(labels)) if labels[a] == labels[b]]
    if not same or len(np.unique(labels)) < 2:
        return np.zeros((0, 2), int), np.zeros(0, bool)
    if len(same) > max_pairs:
        same = [same[i] for i in rng.choice(len(same), max_pairs, replace=False)]
    diff = []
    while len(diff) < len(same):
        a, b = rng.integers(0, len(labels), 2)
        if labels[a] != labels[b]:
            diff.append((a, b))
    pairs = np.array(same + diff)
    return pairs, np.r_[np.ones(len(same), bool), np.zeros(len(diff), bool)]


def best_threshold(sims: np.ndarray, same: np.ndarray) -> float:
    """The cosine threshold with the highest accuracy (mid-point between neighbouring scores)."""
    order = np.sort(np.unique(sims))
    candidates = np.r_[order[0] - 1e-6, (order[1:] + order[:-1]) / 2, order[-1] + 1e-6]
    accs = [((sims > t) == same).mean() for t in candidates]
    return float(candidates[int(np.argmax(accs))])


@torch.no_grad()
def embed(model: IdentityExtractor, images: np.ndarray, device, batch_size: int = 128) -> torch.Tensor:
    model.eval()
    out = [F.normalize(model(_to_tensor(images[i:i + batch_size], device)), dim=1).cpu()
           for i in range(0, len(images), batch_size)]
    return torch.cat(out)


def _to_tensor(images: np.ndarray, device) -> torch.Tensor:
    # contiguous: channels-last input crashed torch 2.13's CPU backward here (heap corruption)
    return torch.from_numpy(images).to(device).permute(0, 3, 1, 2).contiguous().float() / 127.5 - 1.0


def verification_accuracy(model, images, labels, pairs, same, threshold, device) -> float:
    if len(pairs) == 0:
        return float("nan")
    e = embed(model, images, device)
    sims = (e[pairs[:, 0]] * e[pairs[:, 1]]).sum(1).numpy()
    return float(((sims > threshold) == same).mean())


def train_identity(data_dir: str, out: Optional[str], params: TrainIdentityParams = TrainIdentityParams(),
                   device=None, progress: bool = True) -> Dict[str, float]:
    """Train with the ArcFace loss; the threshold is fitted on pairs of training images, and the
    accuracy is measured on pairs of held-out images. Saves to `out` (if given) and returns a summary."""
    from ..device import pick_device

    device = pick_device(device)
    rng = np.random.default_rng(params.seed)
    torch.manual_seed(params.seed)
    data = load_face_folder(data_dir, params.resolution, params.align, progress)
    for path, reason in data.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    held = split_held_out(data.labels, params.val_fraction, rng)
    tr_img, tr_lab, va_img, va_lab = data.images[~held], data.labels[~held], data.images[held], data.labels[held]
    tr_pairs, tr_same = verification_pairs(tr_lab, params.max_pairs, rng)
    va_pairs, va_same = verification_pairs(va_lab, params.max_pairs, rng)

    model = IdentityExtractor(params.model).to(device)
    head = ArcFace(params.model.embedding_dim, len(data.names), params.scale, params.margin).to(device)
    opt = torch.optim.SGD(list(model.parameters()) + list(head.parameters()), lr=params.lr, momentum=0.9,
                          weight_decay=params.weight_decay)
    steps_per_epoch = math.ceil(len(tr_img) / params.batch_size)
    total = max(1, params.epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))

    def evaluate() -> Tuple[float, float]:
        if len(tr_pairs) == 0:
            return float("nan"), 0.0
        e = embed(model, tr_img, device)
        threshold = best_threshold((e[tr_pairs[:, 0]] * e[tr_pairs[:, 1]]).sum(1).numpy(), tr_same)
        return verification_accuracy(model, va_img, va_lab, va_pairs, va_same, threshold, device), threshold

    initial_acc, _ = evaluate()
    bar = tqdm(total=total, desc="train-identity", unit="step", disable=not progress, file=sys.stderr)
    loss_value = float("nan")
    for epoch in range(params.epochs):
        model.train()
        order = rng.permutation(len(tr_img))
        for i in range(0, len(order), params.batch_size):
            idx = order[i:i + params.batch_size]
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            x = _to_tensor(tr_img[idx], device)
            flip = torch.rand(len(idx), device=device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
            loss = head.loss(model(x), torch.from_numpy(tr_lab[idx]).to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_value = loss.item()
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{loss_value:.3f}")
    bar.close()
    accuracy, threshold = evaluate()
    summary = {"people": len(data.names), "train_images": int(len(tr_img)), "held_out_images": int(len(va_img)),
               "held_out_pairs": int(len(va_pairs)), "skipped": len(data.skipped), "final_loss": loss_value,
               "initial_accuracy": initial_acc, "accuracy": accuracy, "threshold": threshold}
    if out:
        from . import save_identity_checkpoint

        save_identity_checkpoint(out, model.cpu(), {"training": {**summary, "data": os.path.abspath(data_dir),
                                                                  "epochs": params.epochs,
                                                                  "resolution": params.resolution,
                                                                  "scale": params.scale, "margin": params.margin}})
    return summary
