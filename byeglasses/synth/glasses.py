"""Glasses parameters (`GlassesParams`) and the distribution they are drawn from (`GlassesDistribution`).

Lengths are fractions of the face scale S (about the distance between the eye centres of a
frontal face), so one set of parameters fits any image size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

LENS_SHAPES = ("round", "oval", "rectangle", "rounded_rectangle", "aviator", "cat_eye", "browline", "rimless")
FRAME_FAMILIES = ("black", "brown", "tortoise", "metal", "plastic")
LENS_TYPES = ("clear", "tinted", "gradient", "mirrored", "sunglasses")

Range = Tuple[float, float]
RGB = Tuple[int, int, int]


@dataclass
class GlassesParams:
    """Everything needed to draw one pair of glasses; rendering is a pure function of these."""

    shape: str = "rounded_rectangle"  # one of LENS_SHAPES
    frame: str = "black"  # one of FRAME_FAMILIES
    frame_rgb: RGB = (20, 20, 22)  # main frame colour
    frame_rgb2: RGB = (60, 60, 64)  # second colour: tortoise spots, metal highlight
    frame_thickness: float = 0.05  # rim width / S
    frame_gloss: float = 0.25  # plastic frames: strength of the specular band along the upper rim
    lens: str = "clear"  # one of LENS_TYPES
    lens_rgb: RGB = (255, 255, 255)  # tint / mirror colour
    lens_opacity: float = 0.0  # tint strength at the lens centre (gradient: at the top)
    lens_opacity_bottom: float = 0.0  # gradient lenses: tint strength at the bottom
    lens_width: float = 1.0  # lens width / S
    lens_aspect: float = 0.6  # lens height / lens width
    lens_offset_x: float = 0.04  # lens centre, outward from the eye centre, / S
    lens_offset_y: float = -0.03  # lens centre, below the eye centre (negative: above), / S
    magnification: float = 1.0  # clear lenses: >1 magnifies what lies behind, <1 shrinks it
    reflection: float = 0.0  # faint brightening from reflected light (0..1)
    reflection_angle: float = 0.0  # direction of that brightening gradient, radians
    edge_ring: float = 0.1  # brightness of the lens edge ring (negative: darker)
    bridge_height: float = -0.3  # where the bridge meets the lens, in lens half-heights (-1 top)
    bridge_arch: float = 0.15  # upward bow of the bridge / gap width
    temple_thickness: float = 0.8  # temple width / rim width
    nose_pads: bool = False  # metal frames: pads on the inner lower rim
    glares: List[Tuple[float, ...]] = field(default_factory=list)  # (lens 0|1, u, v, length, width, angle, strength)
    shadow_dx: float = 0.0  # cast shadow offset / S (x along the eye line)
    shadow_dy: float = 0.04  # cast shadow offset / S (downwards)
    shadow_blur: float = 0.03  # cast shadow blur sigma / S
    shadow_strength: float = 0.25  # darkening under a fully opaque frame
    pattern_seed: int = 0  # seeds the tortoise / metal texture
    scene: float = 0.0  # how much of a reflected scene (sky, horizon, objects) the lenses mirror (0..1)
    scene_seed: int = 0  # seeds that scene
    image: Optional[str] = None  # path of a user RGBA glasses image: replaces the drawn glasses

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GlassesParams":
        d = dict(d)
        d["glares"] = [tuple(g) for g in d.get("glares", [])]
        for k in ("frame_rgb", "frame_rgb2", "lens_rgb"):
            if k in d:
                d[k] = tuple(int(v) for v in d[k])
        return cls(**d)


def _default_aspects() -> Dict[str, Range]:
    return {"round": (0.88, 1.0), "oval": (0.6, 0.78), "rectangle": (0.45, 0.62),
            "rounded_rectangle": (0.5, 0.72), "aviator": (0.75, 0.9), "cat_eye": (0.55, 0.7),
            "browline": (0.55, 0.72), "rimless": (0.5, 0.7)}


@dataclass
class GlassesDistribution:
    """Where every `GlassesParams` field comes from: weights for the families, (low, high) ranges."""

    shape_weights: Dict[str, float] = field(default_factory=lambda: {
        "round": 1.0, "oval": 1.0, "rectangle": 1.5, "rounded_rectangle": 2.0, "aviator": 0.8,
        "cat_eye": 0.6, "browline": 0.6, "rimless": 0.6})
    frame_weights: Dict[str, float] = field(default_factory=lambda: {
        "black": 2.0, "brown": 1.0, "tortoise": 1.0, "metal": 2.0, "plastic": 0.8})
    lens_weights: Dict[str, float] = field(default_factory=lambda: {
        "clear": 5.0, "tinted": 1.0, "gradient": 0.8, "mirrored": 0.5, "sunglasses": 2.0})
    aspect: Dict[str, Range] = field(default_factory=_default_aspects)
    lens_width: Range = (0.82, 1.08)
    bridge_gap: Range = (0.14, 0.3)  # between the lenses / S; sets lens_offset_x
    lens_offset_y: Range = (-0.08, 0.03)
    thickness_metal: Range = (0.012, 0.03)
    thickness_plastic: Range = (0.03, 0.085)
    tint_opacity: Range = (0.15, 0.5)
    sun_opacity: Range = (0.82, 0.97)
    mirror_opacity: Range = (0.8, 0.95)
    gradient_top: Range = (0.6, 0.92)
    gradient_bottom: Range = (0.05, 0.35)
    frame_gloss: Range = (0.05, 0.45)
    clear_tint: Range = (0.0, 0.06)
    magnification: Range = (0.9, 1.06)
    reflection: Range = (0.0, 0.12)
    edge_ring: Range = (-0.25, 0.3)
    bridge_height: Range = (-0.55, -0.1)
    bridge_arch: Range = (0.0, 0.35)
    temple_thickness: Range = (0.6, 1.0)
    glare_count: Tuple[int, int] = (0, 3)  # inclusive
    glare_strength: Range = (0.06, 0.4)
    shadow_offset: Range = (0.02, 0.07)
    shadow_blur: Range = (0.012, 0.035)
    shadow_strength: Range = (0.1, 0.4)
    scene: Range = (0.0, 0.0)  # strength of a reflected scene on the lenses below (0, 0): none
    scene_lenses: Tuple[str, ...] = ("tinted", "gradient", "mirrored", "sunglasses")
    image_paths: Tuple[str, ...] = ()  # user RGBA glasses images to draw from
    image_probability: float = 0.0  # chance of using one of `image_paths` instead of drawing

    @classmethod
    def thin(cls) -> "GlassesDistribution":
        """Thin metal and rimless frames, mostly with clear lenses, nose pads and faint
        reflections: the glasses a model trained on the ordinary mix leaves on real photos."""
        return cls(shape_weights={"round": 1.0, "oval": 1.5, "rectangle": 1.5, "rounded_rectangle": 1.5,
                                  "aviator": 0.7, "cat_eye": 0.2, "browline": 0.5, "rimless": 2.5},
                   frame_weights={"metal": 1.0}, lens_weights={"clear": 8.0, "tinted": 1.0, "gradient": 0.5},
                   thickness_metal=(0.008, 0.022), clear_tint=(0.0, 0.04), reflection=(0.0, 0.2),
                   glare_count=(0, 4))

    @classmethod
    def dark(cls) -> "GlassesDistribution":
        """Sunglasses, mirrored and gradient lenses that reflect a scene, and thick dark frames:
        what a model trained on the ordinary mix leaves faded or ghosted on real photos."""
        return cls(lens_weights={"clear": 1.0, "tinted": 1.0, "gradient": 1.5, "mirrored": 1.5, "sunglasses": 5.0},
                   frame_weights={"black": 3.0, "brown": 1.0, "tortoise": 1.5, "metal": 2.0, "plastic": 0.8},
                   thickness_plastic=(0.04, 0.1), frame_gloss=(0.1, 0.6), sun_opacity=(0.88, 0.99),
                   scene=(0.1, 0.55))

    def sample(self, rng: np.random.Generator) -> GlassesParams:
        u = lambda r: float(rng.uniform(*r))  # noqa: E731
        pick = lambda w: _pick(rng, w)  # noqa: E731
        shape, frame, lens = pick(self.shape_weights), pick(self.frame_weights), pick(self.lens_weights)
        if shape in ("rimless", "aviator") and frame in ("tortoise", "plastic") and rng.random() < 0.7:
            frame = "metal"
        frame_rgb, frame_rgb2 = _frame_colours(frame, rng)
        metal = frame == "metal" or shape == "rimless"
        width = u(self.lens_width) * (0.85 if shape == "round" else 1.0)
        p = GlassesParams(
            shape=shape, frame=frame, frame_rgb=frame_rgb, frame_rgb2=frame_rgb2,
            frame_thickness=u(self.thickness_metal if metal else self.thickness_plastic),
            lens=lens, lens_width=width, lens_aspect=u(self.aspect[shape]),
            lens_offset_x=0.5 * (u(self.bridge_gap) + width) - 0.5, lens_offset_y=u(self.lens_offset_y),
            frame_gloss=u(self.frame_gloss),
            edge_ring=u(self.edge_ring), bridge_height=u(self.bridge_height),
            bridge_arch=u(self.bridge_arch), temple_thickness=u(self.temple_thickness),
            nose_pads=bool(metal and rng.random() < 0.8),
            shadow_dx=u((-0.02, 0.02)), shadow_dy=u(self.shadow_offset), shadow_blur=u(self.shadow_blur),
            shadow_strength=u(self.shadow_strength), pattern_seed=int(rng.integers(2**31)))
        if shape == "aviator" and lens == "clear" and rng.random() < 0.5:
            p.lens = lens = "sunglasses"
        p.lens_rgb, p.lens_opacity, p.lens_opacity_bottom = _lens_tint(self, lens, rng)
        p.reflection = u(self.reflection)
        if lens == "clear":
            p.magnification = u(self.magnification)
        p.reflection_angle = u((0.0, 2 * np.pi))
        n = int(rng.integers(self.glare_count[0], self.glare_count[1] + 1))
        gmax = self.glare_strength[1] * (1.0 if lens != "clear" else 0.7)
        p.glares = [(int(rng.integers(2)), u((-0.6, 0.6)), u((-0.7, 0.3)), u((0.3, 1.0)), u((0.06, 0.25)),
                     u((-1.2, 1.2)), u((self.glare_strength[0], gmax))) for _ in range(n)]
        if self.image_paths and rng.random() < self.image_probability:
            p.image = str(self.image_paths[int(rng.integers(len(self.image_paths)))])
        if self.scene[1] > 0 and lens in self.scene_lenses:  # drawn last: other distributions' draws stay as they were
            p.scene, p.scene_seed = u(self.scene), int(rng.integers(2**31))
        return p


class MixedDistribution:
    """`other` with probability `share` (then `other2` with `share2`), else `base`: `sample(rng)`
    like a GlassesDistribution."""

    def __init__(self, base: GlassesDistribution, other: GlassesDistribution, share: float,
                 other2: Optional[GlassesDistribution] = None, share2: float = 0.0):
        if share < 0 or share2 < 0 or share + share2 > 1:
            raise ValueError(f"shares must be 0 or more and add up to at most 1, got {share} and {share2}")
        self.base, self.other, self.share, self.other2, self.share2 = base, other, share, other2, share2

    def sample(self, rng: np.random.Generator) -> GlassesParams:
        r = rng.random()
        if r < self.share:
            return self.other.sample(rng)
        if self.other2 is not None and r < self.share + self.share2:
            return self.other2.sample(rng)
        return self.base.sample(rng)


def _pick(rng: np.random.Generator, weights: Dict[str, float]) -> str:
    """A key drawn with probability proportional to its weight: what rng.choice(keys, p=...) draws, from
    the same single uniform number, without its checks (a few times faster; pairs are drawn by the million)."""
    cdf = (np.array(list(weights.values())) / sum(weights.values())).cumsum()
    cdf /= cdf[-1]
    return list(weights)[int(cdf.searchsorted(rng.random(), side="right"))]


def _jitter(rng, rgb, amount: float) -> RGB:
    return tuple(int(v) for v in np.clip(np.array(rgb) + rng.normal(0, amount, 3), 0, 255))


def _frame_colours(frame: str, rng: np.random.Generator) -> Tuple[RGB, RGB]:
    if frame == "black":
        c = _jitter(rng, (18, 18, 20), 6)
        return c, _jitter(rng, (70, 70, 75), 10)
    if frame == "brown":
        c = _jitter(rng, (75, 45, 28), 15)
        return c, _jitter(rng, (125, 85, 55), 15)
    if frame == "tortoise":
        return _jitter(rng, (40, 22, 14), 6), _jitter(rng, (130, 75, 35), 15)
    if frame == "metal":
        base = [(200, 200, 205), (190, 160, 90), (80, 80, 85), (150, 110, 80), (40, 40, 45)]
        c = base[int(rng.integers(len(base)))]
        return _jitter(rng, c, 10), _jitter(rng, tuple(min(255, v + 70) for v in c), 5)
    hue = [(150, 25, 30), (30, 55, 130), (25, 90, 60), (120, 30, 90), (200, 120, 140), (90, 90, 100),
           (170, 150, 120), (210, 210, 215)]
    c = hue[int(rng.integers(len(hue)))]
    return _jitter(rng, c, 20), _jitter(rng, tuple(min(255, v + 50) for v in c), 10)


def _lens_tint(dist: GlassesDistribution, lens: str, rng: np.random.Generator) -> Tuple[RGB, float, float]:
    u = lambda r: float(rng.uniform(*r))  # noqa: E731
    if lens == "clear":
        return _jitter(rng, (225, 230, 240), 15), u(dist.clear_tint), 0.0
    if lens == "tinted":
        hues = [(200, 160, 60), (90, 120, 200), (210, 110, 140), (150, 100, 60), (110, 110, 110), (110, 150, 90)]
        return _jitter(rng, hues[int(rng.integers(len(hues)))], 20), u(dist.tint_opacity), 0.0
    if lens == "gradient":
        hues = [(60, 45, 35), (40, 40, 45), (70, 60, 90), (100, 70, 40)]
        return _jitter(rng, hues[int(rng.integers(len(hues)))], 10), u(dist.gradient_top), u(dist.gradient_bottom)
    if lens == "mirrored":
        hues = [(190, 195, 205), (70, 130, 220), (220, 170, 60), (200, 90, 60), (90, 200, 170)]
        return _jitter(rng, hues[int(rng.integers(len(hues)))], 15), u(dist.mirror_opacity), 0.0
    hues = [(18, 18, 20), (30, 35, 25), (45, 30, 20), (25, 25, 35)]
    return _jitter(rng, hues[int(rng.integers(len(hues)))], 5), u(dist.sun_opacity), 0.0
