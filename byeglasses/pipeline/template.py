"""The canonical face crop: where the 68 dlib landmarks sit, on average, in the training faces.

Measured on 985 CelebA-HQ training faces at 256 px (every 16th file of train/, one face each),
as fractions of the crop side: `python benchmarks/measure_template.py` re-measures it.
Alignment maps a photo's face onto these positions (FFHQ-style similarity transform), so the
generator sees faces framed as in training. Mean per-point standard deviation: 0.021.
"""

import numpy as np

from .detect import five_points

# (68, 2) x, y as fractions of the crop side
TEMPLATE_68 = np.array([
    (0.2301, 0.4820),
    (0.2321, 0.5541),
    (0.2407, 0.6264),
    (0.2550, 0.6976),
    (0.2809, 0.7644),
    (0.3225, 0.8229),
    (0.3735, 0.8737),
    (0.4316, 0.9155),
    (0.4987, 0.9278),
    (0.5664, 0.9163),
    (0.6273, 0.8760),
    (0.6815, 0.8263),
    (0.7255, 0.7680),
    (0.7531, 0.7008),
    (0.7677, 0.6282),
    (0.7762, 0.5550),
    (0.7790, 0.4815),
    (0.2759, 0.4261),
    (0.3108, 0.3994),
    (0.3571, 0.3942),
    (0.4040, 0.4030),
    (0.4485, 0.4224),
    (0.5455, 0.4215),
    (0.5917, 0.4018),
    (0.6399, 0.3937),
    (0.6874, 0.4001),
    (0.7237, 0.4269),
    (0.4970, 0.4769),
    (0.4966, 0.5253),
    (0.4962, 0.5739),
    (0.4956, 0.6232),
    (0.4449, 0.6521),
    (0.4695, 0.6623),
    (0.4965, 0.6714),
    (0.5239, 0.6624),
    (0.5492, 0.6528),
    (0.3306, 0.4801),
    (0.3604, 0.4624),
    (0.3970, 0.4639),
    (0.4274, 0.4888),
    (0.3937, 0.4947),
    (0.3578, 0.4939),
    (0.5703, 0.4893),
    (0.6012, 0.4644),
    (0.6377, 0.4633),
    (0.6675, 0.4813),
    (0.6404, 0.4948),
    (0.6048, 0.4954),
    (0.3895, 0.7344),
    (0.4293, 0.7201),
    (0.4688, 0.7134),
    (0.4972, 0.7206),
    (0.5267, 0.7138),
    (0.5676, 0.7210),
    (0.6093, 0.7350),
    (0.5695, 0.7771),
    (0.5291, 0.7958),
    (0.4971, 0.7990),
    (0.4661, 0.7955),
    (0.4271, 0.7770),
    (0.4067, 0.7382),
    (0.4684, 0.7381),
    (0.4972, 0.7412),
    (0.5271, 0.7383),
    (0.5919, 0.7385),
    (0.5275, 0.7578),
    (0.4969, 0.7612),
    (0.4677, 0.7575),
], dtype=np.float32)

TEMPLATE_5 = five_points(TEMPLATE_68)  # (5, 2) eye centres, nose tip, mouth corners


def template(resolution: int, points: int = 68) -> np.ndarray:
    """Template landmarks in pixels of a square crop of side `resolution`."""
    base = TEMPLATE_68 if points == 68 else TEMPLATE_5
    return base * float(resolution)
