"""`byeglasses export-onnx`: write the generator as an ONNX file."""

from __future__ import annotations

from ..files import check_output_file
from ..pipeline.onnx import OPSET, export_onnx


def configure_parser(p) -> None:
    p.add_argument("--checkpoint", default=None,
                   help="generator checkpoint (.safetensors); default: the model shipped with the package")
    p.add_argument("--out", default="generator.onnx", help="ONNX file to write")
    p.add_argument("--opset", type=int, default=OPSET, help="ONNX opset version (17 or later)")


def run(args) -> int:
    from ..model.weights import load_generator

    from ..pipeline.onnx import check_opset

    check_opset(args.opset)
    check_output_file(args.out)
    generator, config = load_generator(args.checkpoint, device="cpu")
    path = export_onnx(generator, config.model.resolution, args.out, opset=args.opset)
    r = config.model.resolution
    print(f"wrote {path}: input x (batch, 3, {r}, {r}) in [-1, 1] -> y_hat, m_hat (preset {config.preset})")
    return 0
