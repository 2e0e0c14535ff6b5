"""byeglasses: remove eyeglasses from face photos (ByeGlassesGAN, Lee & Lai, ECCV 2020)."""

__version__ = "0.1.0"

__all__ = ["__version__", "GlassesRemover", "RemovalSettings"]


def __getattr__(name):
    # Lazy so that `import byeglasses` stays cheap (no dlib / torch model loading).
    if name in ("GlassesRemover", "RemovalSettings"):
        from .pipeline import remover

        return getattr(remover, name)
    raise AttributeError(f"module 'byeglasses' has no attribute {name!r}")
