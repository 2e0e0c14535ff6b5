"""`byeglasses train-identity`: train the ResNet-34 + ArcFace identity extractor."""

from __future__ import annotations

import os

from ..identity.resnet import IdentityConfig
from ..identity.train import TrainIdentityParams, train_identity


def configure_parser(p) -> None:
    d = TrainIdentityParams()
    p.add_argument("data", metavar="DIR", help="folder with one subfolder of face images per person "
                                               "(aligned canonical crops, unless --align)")
    p.add_argument("--out", required=True, help="checkpoint to write (.safetensors; a .json goes beside it)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="passes over the training images")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="images per step")
    p.add_argument("--resolution", type=int, default=d.resolution,
                   help="side the images are brought to (the network resizes to 112)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help="fraction of each person's images held out for the verification accuracy")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (split, pairs, init, order)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps; unset: CUDA, else MPS, else CPU")
    p.add_argument("--lr", type=float, default=d.lr, help="SGD learning rate (cosine decay to 0)")
    p.add_argument("--scale", type=float, default=d.scale, help="ArcFace scale s")
    p.add_argument("--margin", type=float, default=d.margin, help="ArcFace additive angular margin m (radians)")
    p.add_argument("--base-width", type=int, default=d.model.base_width,
                   help="channels of the first ResNet-34 stage (64 as in the paper; smaller is faster)")
    p.add_argument("--embedding-dim", type=int, default=d.model.embedding_dim, help="identity feature size")
    p.add_argument("--align", action="store_true", help="detect faces with dlib and align them to the template")


def run(args) -> int:
    from ..errors import ByeGlassesError

    if os.path.abspath(args.out).startswith(os.path.abspath(args.data) + os.sep):
        raise ByeGlassesError(f"--out {args.out} lies inside the training folder {args.data}; write it elsewhere")
    params = TrainIdentityParams(epochs=args.epochs, batch_size=args.batch_size, resolution=args.resolution,
                                 val_fraction=args.val_fraction, seed=args.seed, lr=args.lr, scale=args.scale,
                                 margin=args.margin, align=args.align,
                                 model=IdentityConfig(base_width=args.base_width, embedding_dim=args.embedding_dim))
    s = train_identity(args.data, args.out, params, args.device)
    if s["held_out_pairs"]:
        result = (f"held-out verification accuracy {s['accuracy']:.3f} (before training {s['initial_accuracy']:.3f}, "
                  f"threshold {s['threshold']:.3f}, {s['held_out_pairs']} pairs)")
    else:
        result = "held-out verification accuracy n/a (no held-out same-person pairs; raise --val-fraction)"
    print(f"train-identity: {s['people']} people, {s['train_images']} training / {s['held_out_images']} held-out "
          f"images, {s['skipped']} skipped; {result}; saved {args.out}")
    return 0
