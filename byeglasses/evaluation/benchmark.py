"""`byeglasses eval`: a fixed synthesized benchmark (same seed → every model sees the same glasses),
scored for a checkpoint and for the baselines: input unchanged, OpenCV Telea inpainting inside the
ground-truth glasses mask, and Telea inside the model's predicted mask."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict, List, Optional

import cv2
import numpy as np
import torch

from ..model.weights import load_generator
from ..pipeline.imageio import tensor_to_uint8
from ..device import pick_device
from ..errors import SettingError
from .metrics import dlib_descriptor, iou, psnr, ssim

METHODS = ("model", "input", "telea_gt_mask", "telea_pred_mask")
METRICS = ("psnr", "psnr_glasses", "ssim", "ssim_glasses", "identity", "iou_glasses", "iou_face", "ms")
BENCHMARK_SEED = 2020  # the paper's year; fixed so that every model is scored on the same glasses


def telea(image: np.ndarray, mask: np.ndarray, radius: Optional[int] = None) -> np.ndarray:
    """OpenCV's Telea inpainting of `image` where mask > 0.5 (radius scales with the image)."""
    radius = radius or max(2, round(image.shape[0] / 64))
    return cv2.inpaint(image, (mask > 0.5).astype(np.uint8), radius, cv2.INPAINT_TELEA)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def score(out: np.ndarray, y: np.ndarray, glasses: np.ndarray, y_descriptor: Optional[np.ndarray],
          landmarks: np.ndarray) -> Dict[str, float]:
    r = {"psnr": psnr(out, y), "psnr_glasses": psnr(out, y, glasses), "ssim": ssim(out, y),
         "ssim_glasses": ssim(out, y, glasses)}
    if y_descriptor is not None:
        r["identity"] = _cosine(dlib_descriptor(out, landmarks), y_descriptor)
    return r


def evaluate(checkpoint: Optional[str], faces: str, count: Optional[int] = None, seed: int = BENCHMARK_SEED,
             device=None, identity: bool = True, landmark_cache: Optional[str] = None,
             resolution: Optional[int] = None, progress: bool = True) -> dict:
    """Score the model and the baselines; returns {"methods": {name: {metric: mean}}, ...}."""
    from tqdm import tqdm

    from ..files import list_images
    from ..synth.dataset import SynthFaceDataset

    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
        raise SettingError("count", f"must be a whole number of at least 1, got {count!r}")
    if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int)
                                   or resolution < 32 or resolution > 4096 or resolution % 32):
        raise SettingError("resolution", f"must be a multiple of 32 from 32 to 4096, got {resolution!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 32:
        raise SettingError("seed", f"must be from 0 to 2**32-1, got {seed!r}")
    device = pick_device(device)
    generator, config = (load_generator(checkpoint, device) if checkpoint else (None, None))
    res = resolution or (config.model.resolution if config else 256)
    if config is not None and (res % 2 ** config.model.depth or res // 2 ** config.model.depth < 2):
        f = 2 ** config.model.depth
        raise SettingError("resolution", f"must be a multiple of {f} and at least {2 * f} for this model "
                           f"({config.model.depth} stride-2 blocks), got {res}")
    names = list_images(faces)
    if not names:
        raise SettingError("faces", f"{faces}: no images in this folder")
    dataset = SynthFaceDataset(faces, res, seed=seed, cache_path=landmark_cache, files=names, progress=progress)
    n = len(dataset) if count is None else min(count, len(dataset))
    if generator is not None:  # warm-up, so that ms/img is the steady state
        with torch.inference_mode():
            generator(torch.zeros(1, 3, res, res, device=device))
    per: Dict[str, Dict[str, List[float]]] = {m: {k: [] for k in METRICS} for m in METHODS}
    t0 = time.time()
    for i in tqdm(range(n), desc="eval", unit="face", disable=not progress):
        s = dataset.sample(i, epoch=0)
        lm = _scaled_landmarks(dataset, i, res)
        y_desc = dlib_descriptor(s.y, lm) if identity else None
        outputs, ms = {"input": s.x}, {"input": 0.0}
        t = time.perf_counter()
        outputs["telea_gt_mask"] = telea(s.x, s.glasses_mask)
        ms["telea_gt_mask"] = (time.perf_counter() - t) * 1e3
        if generator is not None:
            x = torch.from_numpy(s.x.transpose(2, 0, 1).copy()).float().div(127.5).sub(1).unsqueeze(0).to(device)
            t = time.perf_counter()
            with torch.inference_mode():
                y_hat, m_hat = generator(x)
            ms["model"] = (time.perf_counter() - t) * 1e3
            outputs["model"] = tensor_to_uint8(y_hat[0])
            if m_hat is not None:
                pred_glasses = m_hat[0, 0].float().cpu().numpy()
                t = time.perf_counter()
                outputs["telea_pred_mask"] = telea(s.x, pred_glasses)
                ms["telea_pred_mask"] = ms["model"] + (time.perf_counter() - t) * 1e3
                for name in ("model", "telea_pred_mask"):
                    per[name]["iou_glasses"].append(iou(pred_glasses, s.glasses_mask))
                    if m_hat.shape[1] > 1:
                        per[name]["iou_face"].append(iou(m_hat[0, 1].float().cpu().numpy(), s.face_mask))
        for name, out in outputs.items():
            for k, v in score(out, s.y, s.glasses_mask, y_desc, lm).items():
                per[name][k].append(v)
            per[name]["ms"].append(ms[name])
    seconds = time.time() - t0
    methods = {m: {k: _mean(v) for k, v in d.items() if v} for m, d in per.items() if any(d.values())}
    return {"checkpoint": str(checkpoint) if checkpoint else None, "faces": str(Path(faces).resolve()),
            "count": n, "seed": seed, "resolution": res, "skipped": len(dataset.skipped),
            "seconds": round(seconds, 1), "methods": methods}


def _scaled_landmarks(dataset, i: int, res: int) -> np.ndarray:
    """Landmarks of face i at the benchmark resolution (as the dataset resized it)."""
    from ..synth.cache import read_rgb
    from ..synth.dataset import square_resize

    face = read_rgb(Path(dataset.faces_dir) / dataset.names[i])
    return square_resize(face, dataset.landmarks[i], res)[1]


def _mean(values: List[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


LABELS = {"model": "ByeGlassesGAN (this checkpoint)", "input": "input unchanged",
          "telea_gt_mask": "Telea inpainting, ground-truth mask", "telea_pred_mask": "Telea inpainting, predicted mask"}
HEADERS = {"psnr": "PSNR", "psnr_glasses": "PSNR glasses", "ssim": "SSIM", "ssim_glasses": "SSIM glasses",
           "identity": "ID sim. (dlib)", "iou_glasses": "IoU glasses", "iou_face": "IoU face", "ms": "ms/img"}


def markdown_table(result: dict) -> str:
    cols = [k for k in METRICS if any(k in m for m in result["methods"].values())]
    lines = ["| method | " + " | ".join(HEADERS[c] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, m in result["methods"].items():
        cells = [("—" if c not in m else f"{m[c]:.4f}" if c.startswith(("ssim", "identity", "iou"))
                  else f"{m[c]:.2f}") for c in cols]
        lines.append(f"| {LABELS.get(name, name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
