"""Command line: `byeglasses SUBCOMMAND ...`. Thin: each subcommand lives in its own module,
which defines `configure_parser(parser)` and `run(args) -> int` (the exit code)."""

import argparse
import importlib
import sys

from .. import __version__
from ..errors import ByeGlassesError, run_script

# subcommand -> (module in cli/, one-line help). A command whose module cannot be imported is
# left out of this build with a clear error.
COMMANDS = {
    "demo": ("byeglasses.cli.demo", "remove glasses drawn onto scikit-image's astronaut; writes a side-by-side PNG"),
    "remove": ("byeglasses.cli.remove", "remove glasses from photos (files, folders or globs)"),
    "synth": ("byeglasses.cli.synth", "synthesize training pairs: glasses drawn onto glasses-free faces"),
    "cut-glasses": ("byeglasses.cli.cut_glasses", "cut real glasses out of photos, as RGBA images for synth/train"),
    "train": ("byeglasses.cli.train", "train ByeGlassesGAN with glasses synthesized on the fly"),
    "eval": ("byeglasses.cli.eval", "benchmark a checkpoint and the baselines on a fixed synthesized set"),
    "train-identity": ("byeglasses.cli.train_identity", "train the paper's ResNet-34 + ArcFace identity extractor"),
    "export-onnx": ("byeglasses.cli.export_onnx", "export the generator to ONNX"),
    "eval-verification": ("byeglasses.cli.eval_verification",
                          "face verification with the glasses on and after removal (the paper's Sec. 4.4)"),
    "train-classifier": ("byeglasses.cli.train_classifier", "train the glasses classifier `remove` consults"),
    "serve": ("byeglasses.cli.serve", "a local web page: upload photos, download them without glasses (needs [web])"),
}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none to show (None, False, or already in the text)."""

    def _get_help_string(self, action):
        if action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="byeglasses", description="Remove eyeglasses from face photos while keeping the person recognisable.")
    parser.add_argument("--version", action="version", version=f"byeglasses {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_,
                           formatter_class=_HelpFormatter)
        p.set_defaults(_module=module)
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name and module.startswith(e.name):  # that command is not part of this build
                p.set_defaults(_run=lambda args, m=module: _missing(m))
                continue
            raise
        mod.configure_parser(p)
        p.set_defaults(_run=mod.run)
    return parser


def _missing(module: str) -> int:
    raise ByeGlassesError(f"this installation lacks {module}")


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return run_script(lambda: args._run(args), f"byeglasses {args.command}")


if __name__ == "__main__":
    sys.exit(main())
