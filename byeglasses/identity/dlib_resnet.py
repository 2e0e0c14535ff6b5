"""dlib's face-recognition ResNet (dlib_face_recognition_resnet_model_v1.dat) read without dlib, in PyTorch.

The file is dlib's `serialize` of the `anet_type` network in dlib's dnn_face_recognition_ex.cpp:
loss_metric < fc_no_bias 128 < avg_pool_everything < 15 residual blocks < max_pool 3/2 < relu <
affine < con 32 7x7/2 < input_rgb_image_sized 150 > ... >. dlib writes a network outside-in:
each wrapper's version number first (outermost first), then the input layer, then every
computational layer's parameters and state from the input upwards. Tag and skip layers write
only a version, so the residual structure is recovered from the layer pattern.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError

MODEL_NAME = "dlib_face_recognition_resnet_model_v1.dat"
CHIP_SIZE = 150  # dlib's input_rgb_image_sized<150>


class _Reader:
    """dlib's portable encodings (dlib/serialize.h, float_details.h, dnn/tensor.h)."""

    def __init__(self, data: bytes, path: str):
        self.data, self.pos, self.path = data, 0, path

    def fail(self, what: str) -> CheckpointError:
        return CheckpointError(f"{self.path}: not a dlib face-recognition network: {what} at byte {self.pos}")

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise self.fail(f"file ends early (truncated?) reading {n} bytes")
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int(self) -> int:
        # one control byte (bit 7: negative, low nibble: byte count), then little-endian magnitude
        ctrl = self.take(1)[0]
        n = ctrl & 0x0F
        if n == 0 or n > 8 or ctrl & 0x70:
            raise self.fail(f"bad integer header 0x{ctrl:02x}")
        value = int.from_bytes(self.take(n), "little")
        return -value if ctrl & 0x80 else value

    def float(self) -> float:
        # float_details: mantissa (int64) * 2**exponent (int16); 32000..32002 = inf, -inf, nan
        mantissa, exponent = self.int(), self.int()
        if exponent >= 32000:
            return {32000: float("inf"), 32001: float("-inf")}.get(exponent, float("nan"))
        return float(np.ldexp(float(mantissa), exponent))

    def bool(self) -> bool:
        c = self.take(1)
        if c not in (b"0", b"1"):
            raise self.fail(f"bad bool {c!r}")
        return c == b"1"

    def string(self) -> str:
        n = self.int()
        if not 0 <= n < 256:
            raise self.fail(f"implausible string length {n}")
        return self.take(n).decode("latin-1")

    def peek_string(self) -> Optional[str]:
        pos = self.pos
        try:
            s = self.string()
        except CheckpointError:
            s = None
        self.pos = pos
        return s

    def tensor(self) -> np.ndarray:
        # resizable_tensor: version 2, num_samples, k, nr, nc, then raw little-endian float32
        if self.int() != 2:
            raise self.fail("unknown tensor version")
        shape = tuple(self.int() for _ in range(4))
        if min(shape) < 0:
            raise self.fail(f"bad tensor shape {shape}")
        count = int(np.prod(shape))
        return np.frombuffer(self.take(4 * count), dtype="<f4").reshape(shape)

    def alias(self) -> Tuple[int, ...]:
        if self.int() != 1:
            raise self.fail("unknown alias_tensor version")
        return tuple(self.int() for _ in range(4))


@dataclass
class Layer:
    kind: str  # "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc"
    params: Dict[str, np.ndarray] = field(default_factory=dict)
    window: Tuple[int, int] = (0, 0)  # pooling / kernel rows, cols
    stride: Tuple[int, int] = (1, 1)
    padding: Tuple[int, int] = (0, 0)


@dataclass
class DlibNetwork:
    layers: List[Layer]  # input upwards
    means: Tuple[float, float, float]  # per-channel means subtracted from 0..255 pixels
    size: int  # input side
    threshold: float  # loss_metric's same-person distance (0.6)


def _read_layer(r: _Reader) -> Layer:
    name = r.string()
    if name == "con_4":
        params = r.tensor().reshape(-1)
        num_filters, nr, nc, sy, sx, py, px = (r.int() for _ in range(7))
        fshape, bshape = r.alias(), r.alias()
        for _ in range(4):  # learning-rate and weight-decay multipliers
            r.float()
        nf = int(np.prod(fshape))
        w = params[:nf].reshape(fshape)
        b = params[nf:nf + int(np.prod(bshape))].reshape(-1) if np.prod(bshape) else np.zeros(num_filters, "f4")
        return Layer("con", {"weight": w, "bias": b}, (nr, nc), (sy, sx), (py, px))
    if name == "affine_":
        params = r.tensor().reshape(-1)
        g, b = r.alias(), r.alias()
        r.int()  # mode: CONV_MODE (per channel) or FC_MODE
        ng = int(np.prod(g))
        return Layer("affine", {"gamma": params[:ng].reshape(-1), "beta": params[ng:ng + int(np.prod(b))].reshape(-1)})
    if name == "relu_":
        return Layer("relu")
    if name == "add_prev_":
        return Layer("add_prev")
    if name in ("max_pool_2", "avg_pool_2"):
        nr, nc, sy, sx, py, px = (r.int() for _ in range(6))
        return Layer(name[:-2], window=(nr, nc), stride=(sy, sx), padding=(py, px))
    if name == "fc_2":
        num_outputs, num_inputs = r.int(), r.int()
        params = r.tensor().reshape(-1)
        wshape, bshape = r.alias(), r.alias()
        r.int()  # bias mode
        for _ in range(4):
            r.float()
        nw = int(np.prod(wshape))
        w = params[:nw].reshape(num_inputs, num_outputs)  # output = input @ w
        b = params[nw:nw + int(np.prod(bshape))]
        return Layer("fc", {"weight": w, "bias": b})
    raise r.fail(f"unsupported layer '{name}' (only the layers of dlib's face-recognition ResNet are)")


def parse_dlib_network(path: str) -> DlibNetwork:
    """Parse a dlib `loss_metric` network file into its layer list (input upwards)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CheckpointError(f"cannot read dlib model {path}: {e.strerror}") from None
    r = _Reader(data, path)
    if r.int() != 1 or r.string() != "loss_metric_2":
        raise r.fail("no loss_metric_2 header")
    r.float()  # margin
    threshold = r.float()
    versions = []
    while (s := r.peek_string()) is None or not s.startswith("input"):
        versions.append(r.int())
        if len(versions) > 10000:
            raise r.fail("no input layer found")
    if r.string() != "input_rgb_image_sized":
        raise r.fail("input layer is not input_rgb_image_sized")
    means = (r.float(), r.float(), r.float())
    size, size_c = r.int(), r.int()
    if size != size_c:
        raise r.fail(f"non-square input {size}x{size_c}")
    # versions[-1] is the add_layer holding the input layer (v3: ends with grad_final and
    # the sample expansion factor); the other add_layers are v2 (end with params_grad)
    if not versions or versions[-1] not in (2, 3):
        raise r.fail("unsupported innermost layer version")
    layers = []
    while r.pos < len(data):
        layers.append(_read_layer(r))
        for _ in range(3):
            r.bool()
        r.tensor(), r.tensor()  # x_grad, cached_output
        if len(layers) == 1:
            r.tensor()  # grad_final
            if versions[-1] == 3:
                r.int()
        else:
            r.tensor()  # params_grad
    n_v2 = sum(v == 2 for v in versions[:-1])
    if n_v2 != len(layers) - 1:
        raise r.fail(f"{len(layers)} layers but {n_v2 + 1} layer headers (an older dlib format?)")
    return DlibNetwork(layers, means, size, threshold)


class _Residual(nn.Module):
    """dlib's ares / ares_down: relu(block(x) + skip(x)); block = con3x3/s, affine, relu, con3x3, affine.
    dlib adds tensors of different shapes by zero-padding the smaller one at its end."""

    def __init__(self, cin: int, cout: int, stride: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 0 if stride > 1 else 1)  # dlib pads stride-1 convs only
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(x)))  # affine layers are folded into the convolutions
        s = F.avg_pool2d(x, 2, 2) if self.down else x
        c, h, w = (max(a, b) for a, b in zip(y.shape[1:], s.shape[1:]))
        y = F.pad(y, (0, w - y.shape[3], 0, h - y.shape[2], 0, c - y.shape[1]))
        s = F.pad(s, (0, w - s.shape[3], 0, h - s.shape[2], 0, c - s.shape[1]))
        return F.relu(y + s)


class DlibFaceNet(nn.Module):
    """dlib's face-recognition ResNet: (B, 3, 150, 150) RGB pixel values in [0, 255] -> (B, 128)
    descriptors (not normalised; dlib calls two faces the same person below distance 0.6)."""

    def __init__(self, widths: Tuple[int, ...] = (32,) * 3 + (64,) * 4 + (128,) * 3 + (256,) * 4,
                 downs: Tuple[bool, ...] = (False,) * 3 + (True, False, False, False, True, False, False,
                                                           True, False, False, True),
                 means=(122.782, 117.001, 104.298), size: int = CHIP_SIZE, dim: int = 128):
        super().__init__()
        self.size = size
        self.register_buffer("means", torch.tensor(means, dtype=torch.float32).view(1, 3, 1, 1))
        self.stem = nn.Conv2d(3, widths[0], 7, 2, 0)
        blocks, cin = [], widths[0]
        for w, d in zip(widths, downs):
            blocks.append(_Residual(cin, w, 2 if d else 1, d))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, dim, bias=False)

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        return self.forward_features(chips)[0]

    def forward_features(self, chips: torch.Tensor) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """(descriptors (B, 128), [the activations at the end of each resolution: after the stem's
        pooling and after the last block before each downsampling and at the end])."""
        x = (chips - self.means) / 256.0
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        features = [x]
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i + 1 == len(self.blocks) or self.blocks[i + 1].down:
                features.append(x)
        return self.fc(x.mean(dim=(2, 3))), features

    @classmethod
    def from_parsed(cls, net: DlibNetwork, path: str = "dlib model") -> "DlibFaceNet":
        """Build the module from a parsed file, checking the layer pattern as it goes."""
        kinds = [l.kind for l in net.layers]
        err = CheckpointError(f"{path}: layer sequence is not dlib's face-recognition ResNet: {kinds}")
        if kinds[:4] != ["con", "affine", "relu", "max_pool"] or kinds[-2:] != ["avg_pool", "fc"]:
            raise err
        convs: List[Tuple[Layer, Layer]] = [(net.layers[0], net.layers[1])]
        widths, downs, i = [], [], 4
        while i < len(kinds) - 2:
            down = kinds[i + 5] == "avg_pool"
            want = ["con", "affine", "relu", "con", "affine"] + ["avg_pool"] * down + ["add_prev", "relu"]
            if kinds[i:i + len(want)] != want:
                raise err
            L = net.layers
            convs += [(L[i], L[i + 1]), (L[i + 3], L[i + 4])]
            widths.append(L[i].params["weight"].shape[0])
            downs.append(down)
            i += len(want)
        model = cls(tuple(widths), tuple(downs), net.means, net.size, net.layers[-1].params["weight"].shape[1])
        targets = [model.stem] + [c for b in model.blocks for c in (b.conv1, b.conv2)]
        with torch.no_grad():
            for conv, (con, aff) in zip(targets, convs):
                w, b = con.params["weight"], con.params["bias"]
                g, beta = aff.params["gamma"], aff.params["beta"]
                if (tuple(conv.weight.shape), conv.stride, conv.padding) != (w.shape, con.stride, con.padding):
                    raise CheckpointError(f"{path}: convolution {w.shape} stride {con.stride} padding "
                                          f"{con.padding} does not fit {tuple(conv.weight.shape)} "
                                          f"stride {conv.stride} padding {conv.padding}")
                conv.weight.copy_(torch.from_numpy(w * g[:, None, None, None]))
                conv.bias.copy_(torch.from_numpy(b * g + beta))
            model.fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(net.layers[-1].params["weight"].T)))
        model.threshold = net.threshold
        return model


def default_model_path() -> str:
    from ..pipeline.detect import model_path

    return model_path(MODEL_NAME)


def load_dlib_facenet(path: Optional[str] = None) -> DlibFaceNet:
    """The ported network with dlib's weights, in eval mode. Parsing takes ~0.05 s, so no
    converted copy is cached."""
    path = path or default_model_path()
    return DlibFaceNet.from_parsed(parse_dlib_network(path), path).eval()
