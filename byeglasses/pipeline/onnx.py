"""`byeglasses export-onnx`: the generator as an ONNX model (fixed resolution, dynamic batch)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import torch

from ..errors import ByeGlassesError, CheckpointError, SettingError

OPSET = 17


class _Outputs(torch.nn.Module):
    """The generator with both outputs always present: (ŷ, m̂); m̂ has 0 channels without SD."""

    def __init__(self, generator: torch.nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, x):
        y_hat, m_hat = self.generator(x)
        if m_hat is None:
            m_hat = x[:, :0]
        return y_hat, m_hat


def check_opset(opset: int) -> None:
    """SettingError("opset", ...) unless torch's TorchScript exporter can write `opset`."""
    from torch.onnx import _constants

    highest = getattr(_constants, "ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET", _constants.ONNX_MAX_OPSET)
    if isinstance(opset, bool) or not isinstance(opset, int) or not 17 <= opset <= highest:
        raise SettingError("opset", f"must be from 17 to {highest} (the highest this torch exports), got {opset!r}")


def export_onnx(generator: torch.nn.Module, resolution: int, path, opset: int = OPSET) -> Path:
    """Write `generator` to `path`: input "x" (batch, 3, R, R) in [-1, 1], outputs "y_hat"
    (batch, 3, R, R) and "m_hat" (batch, C, R, R). Whole file or nothing."""
    from ..files import atomic_write

    try:
        import onnx  # noqa: F401 - torch's exporter needs it
    except ImportError:
        raise ByeGlassesError("exporting to ONNX needs the onnx package: pip install 'byeglasses[onnx]'") from None
    check_opset(opset)
    path = Path(path)
    model = _Outputs(generator.to("cpu").eval())
    x = torch.zeros(1, 3, resolution, resolution)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        # dynamo=False: the TorchScript-based exporter works offline and needs no onnxscript.
        torch.onnx.export(model, (x,), buffer, input_names=["x"], output_names=["y_hat", "m_hat"],
                          dynamic_axes={"x": {0: "batch"}, "y_hat": {0: "batch"}, "m_hat": {0: "batch"}},
                          opset_version=opset, dynamo=False)
    data = buffer.getvalue()
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path


def open_session(path, threads: int = 0):
    """(ONNX Runtime CPU session, the model's input side R) for an exported generator."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such ONNX file (make one with `byeglasses export-onnx`)")
    try:
        import onnxruntime as ort
    except ImportError:
        raise ByeGlassesError("the onnx backend needs onnxruntime: pip install 'byeglasses[onnx]'") from None
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's choice (all cores)
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise CheckpointError(f"{path}: not a usable ONNX model ({e})") from None
    shape = session.get_inputs()[0].shape  # [batch, 3, R, R]
    if len(shape) != 4 or not isinstance(shape[-1], int):
        raise CheckpointError(f"{path}: expected an input of shape (batch, 3, R, R), got {shape}")
    return session, int(shape[-1])
