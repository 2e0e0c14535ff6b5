"""The model shipped in the package: loads with no arguments and really removes glasses."""

import numpy as np

from byeglasses import GlassesRemover
from byeglasses.model.weights import DEFAULT_WEIGHTS, read_checkpoint
from byeglasses.evaluation.metrics import psnr
from byeglasses.synth.render import synthesize


def test_shipped_weights_are_small_fp16():
    assert DEFAULT_WEIGHTS.stat().st_size <= 25 * 2 ** 20
    tensors, meta = read_checkpoint(DEFAULT_WEIGHTS)
    assert {t.dtype for t in tensors.values() if t.is_floating_point()} == {__import__("torch").float16}
    assert meta["config"]["preset"] == "cpu"


def test_default_remover_takes_drawn_glasses_off_the_astronaut(astronaut):
    remover = GlassesRemover()
    face = remover.detect(astronaut)[0]
    gains = []
    for seed in range(4):
        sample = synthesize(astronaut, face.landmarks, seed)
        result = remover.remove(sample.x)
        mask = sample.glasses_mask > 0
        assert result.faces and result.faces[0].changed
        # closer to the glasses-free original inside the glasses, bit-identical far away
        gains.append(psnr(result.image, astronaut, mask) - psnr(sample.x, astronaut, mask))
        assert np.array_equal(result.image[result.blend_mask == 0], sample.x[result.blend_mask == 0])
    assert min(gains) > 0 and np.mean(gains) > 3, gains
