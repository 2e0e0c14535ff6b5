"""Reading and writing users' photos faithfully: EXIF orientation, pixel modes, ICC profiles,
decompression bombs, and whole-or-nothing saves."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import InputError
from ..files import atomic_write

# Refused above this many pixels (a 100-megapixel photo is already 300 MB as RGB): a tiny file
# that declares a huge size is a decompression bomb.
MAX_PIXELS = 100_000_000

# Formats written back as themselves (Pillow name -> suffix used when the name must change).
# Everything else (GIF, PPM, ...) is written as PNG, which holds every mode losslessly.
KEEP_FORMAT = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp", "TIFF": ".tif", "BMP": ".bmp"}
# Pixel modes each kept format can store.
FORMAT_MODES = {
    "JPEG": {"L", "RGB", "CMYK"},
    "PNG": {"L", "LA", "RGB", "RGBA", "I;16"},
    "WEBP": {"RGB", "RGBA"},
    "TIFF": {"L", "LA", "RGB", "RGBA", "CMYK", "I;16"},
    "BMP": {"L", "RGB", "RGBA"},
}

# TIFF compressions kept from the input (others, e.g. JPEG-in-TIFF or fax codings, are written uncompressed).
LOSSLESS_TIFF = {"tiff_lzw", "tiff_deflate", "tiff_adobe_deflate", "packbits"}

PathLike = Union[str, os.PathLike]


@dataclass
class Photo:
    """A decoded photo: `rgb` is what the model sees; `native` keeps the stored pixel mode so
    that untouched pixels are written back exactly as they were read."""

    rgb: np.ndarray  # (H, W, 3) uint8, EXIF orientation applied
    native: np.ndarray  # (H, W) or (H, W, C), uint8 or uint16 ("I;16"), same orientation
    mode: str  # Pillow mode of `native`: L, LA, RGB, RGBA, CMYK or I;16
    format: str = "PNG"  # Pillow format name of the input ("JPEG", "PNG", ...)
    path: Optional[Path] = None
    info: dict = field(default_factory=dict)  # icc_profile, exif (orientation removed), dpi, subsampling
    notes: List[str] = field(default_factory=list)  # what the user should know about conversions

    @property
    def size(self):
        return self.rgb.shape[1], self.rgb.shape[0]


def read_image(path: PathLike, max_pixels: int = MAX_PIXELS) -> Photo:
    """Decode one image file, or raise InputError naming it and saying what is wrong."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Pillow warns from its own limit (about 89 Mpixel) up; ours is max_pixels, checked below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image, or in a format Pillow cannot read") from None
    except Image.DecompressionBombError as e:  # over twice Pillow's limit: its message has the size
        raise InputError(f"{path}: declares too many pixels, possible decompression bomb "
                         f"(the limit is {min(max_pixels, 2 * (Image.MAX_IMAGE_PIXELS or 0)) or max_pixels:,}; "
                         f"Pillow: {e})") from None
    except OSError as e:
        raise InputError(f"{path}: cannot be opened ({e})") from None
    with im:
        if im.width * im.height > max_pixels:
            raise InputError(f"{path}: {im.width}x{im.height} = {im.width * im.height:,} pixels exceeds "
                             f"the limit of {max_pixels:,} (possible decompression bomb)")
        fmt = im.format or "PNG"
        notes = []
        if getattr(im, "n_frames", 1) > 1:
            notes.append(f"only the first of its {im.n_frames} frames is processed and written")
        deep_rgb = im.mode in ("RGB", "RGBA") and any(";16" in str(t.args) for t in (im.tile or []))
        info = {"icc_profile": im.info.get("icc_profile"), "dpi": im.info.get("dpi")}
        if fmt in ("JPEG", "MPO"):
            from PIL import JpegImagePlugin

            info["subsampling"] = JpegImagePlugin.get_sampling(im)
        if fmt == "TIFF":
            info["compression"] = im.info.get("compression")
        try:
            # Decodes the pixels: truncated or corrupt data fails here. Pillow raises many kinds.
            im = ImageOps.exif_transpose(im)
        except Exception as e:  # noqa: BLE001 - any decoder failure is this input's problem
            raise InputError(f"{path}: corrupt or truncated image data ({type(e).__name__}: {e})") from None
    exif = im.getexif()
    info["exif"] = exif if len(exif) else None
    if deep_rgb:
        notes.append("16 bits per channel: processed and written at 8 bits per channel")
    return _from_pil(im, path, fmt, info, notes)


def from_array(image, path: Optional[Path] = None) -> Photo:
    """A Photo from a (H, W, 3) uint8 RGB array or a PIL image (EXIF orientation applied)."""
    if isinstance(image, Image.Image):
        im = ImageOps.exif_transpose(image)
        return _from_pil(im, path, image.format or "PNG", {"icc_profile": image.info.get("icc_profile")}, [])
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(f"expected an (H, W, 3) uint8 RGB array, got shape {arr.shape} dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr)
    return Photo(rgb=arr, native=arr, mode="RGB", path=path)


def _from_pil(im: Image.Image, path, fmt: str, info: dict, notes: List[str]) -> Photo:
    name = path if path is not None else "image"
    mode = im.mode
    if mode in ("I;16B", "I;16L", "I;16N"):
        im = Image.fromarray(np.asarray(im).astype(np.uint16))
        mode = "I;16"
    elif mode == "I":
        arr = np.asarray(im)
        if arr.min() < 0 or arr.max() > 65535:
            raise InputError(f"{name}: 32-bit integer pixels outside 0..65535 are not supported")
        im = Image.frombytes("I;16", im.size, arr.astype("<u2").tobytes())
        mode = "I;16"
    elif mode == "1":
        im, mode = im.convert("L"), "L"
        notes.append("bilevel (1-bit) image: written as 8-bit greyscale")
    elif mode in ("P", "PA"):
        has_alpha = mode == "PA" or "transparency" in im.info
        mode = "RGBA" if has_alpha else "RGB"
        im = im.convert(mode)
        notes.append(f"palette image: written as {mode}")
    elif mode in ("RGBX", "YCbCr"):
        im, mode = im.convert("RGB"), "RGB"
    elif mode in ("RGBa", "La"):
        mode = mode.upper()
        im = im.convert(mode)
    elif mode not in ("L", "LA", "RGB", "RGBA", "CMYK", "I;16"):
        raise InputError(f"{name}: pixel mode {mode!r} is not supported")
    native = np.asarray(im)
    if mode == "I;16":
        native = native.astype(np.uint16)
        notes.append("16-bit greyscale: processed at 8 bits; untouched pixels keep their 16-bit values")
    elif mode == "CMYK":
        notes.append("CMYK: processed as RGB through Pillow's plain conversion (no colour management); "
                     "untouched pixels keep their CMYK values")
    photo = Photo(rgb=_to_rgb(native, mode), native=np.ascontiguousarray(native), mode=mode, format=fmt,
                  path=path, info=info, notes=notes)
    if mode in ("L", "LA"):
        notes.append("greyscale: processed as RGB, written back as greyscale")
    return photo


def _to_rgb(native: np.ndarray, mode: str) -> np.ndarray:
    if mode == "RGB":
        return native
    if mode == "RGBA":
        return np.ascontiguousarray(native[..., :3])
    if mode in ("L", "LA"):
        grey = native if mode == "L" else native[..., 0]
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "I;16":
        grey = np.round(native.astype(np.float32) / 257.0).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "CMYK":
        return np.asarray(Image.fromarray(native, "CMYK").convert("RGB"))
    raise ValueError(mode)


def _rgb_to_native(pixels: np.ndarray, mode: str) -> np.ndarray:
    """(N, 3) uint8 RGB -> (N,) or (N, C) in `mode` (alpha channels excluded)."""
    if mode in ("RGB", "RGBA"):
        return pixels
    strip = Image.fromarray(pixels.reshape(-1, 1, 3), "RGB")
    if mode in ("L", "LA"):
        return np.asarray(strip.convert("L")).reshape(-1)
    if mode == "I;16":
        return np.asarray(strip.convert("L")).reshape(-1).astype(np.uint16) * 257
    if mode == "CMYK":
        return np.asarray(strip.convert("CMYK")).reshape(-1, 4)
    raise ValueError(mode)


def compose(photo: Photo, rgb: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """The photo's native pixels with those where `changed` (H, W) is True replaced by `rgb`
    (H, W, 3) uint8, converted to the native mode; every other value is copied unchanged."""
    out = photo.native.copy()
    new = _rgb_to_native(rgb[changed], photo.mode)
    if photo.mode in ("RGBA", "LA"):
        out[..., :-1][changed] = new if photo.mode == "RGBA" else new[:, None]
    else:
        out[changed] = new
    return out


def to_pil(native: np.ndarray, mode: str) -> Image.Image:
    h, w = native.shape[:2]
    data = native.astype("<u2").tobytes() if mode == "I;16" else np.ascontiguousarray(native).tobytes()
    return Image.frombytes(mode, (w, h), data)


def output_format(photo: Photo) -> str:
    fmt = photo.format.upper()
    if fmt in KEEP_FORMAT and photo.mode in FORMAT_MODES[_canonical(fmt)]:
        return _canonical(fmt)
    return "PNG"


def _canonical(fmt: str) -> str:
    return "JPEG" if fmt == "MPO" else fmt


def output_name(photo: Photo, fallback: str = "image") -> str:
    """File name for the output: the input's name, with the suffix changed only if the format is."""
    stem, suffix = (photo.path.stem, photo.path.suffix) if photo.path else (fallback, "")
    fmt = output_format(photo)
    if photo.format.upper() in KEEP_FORMAT and _canonical(photo.format.upper()) == fmt and suffix:
        return stem + suffix
    return stem + KEEP_FORMAT[fmt]


def format_notes(photo: Photo) -> List[str]:
    """Notes about how the output file differs in kind from the input (format changes, re-encoding)."""
    notes = list(photo.notes)
    fmt = output_format(photo)
    if _canonical(photo.format.upper()) != fmt:
        notes.append(f"{photo.format} input written as {fmt}")
    return notes


def check_decodes(path: PathLike) -> None:
    """Raise IncompleteWrite unless the image file at `path` decodes whole: a full disk or a
    file-size limit can cut a JPEG short without any error from the encoder."""
    try:
        with Image.open(path) as im:
            im.load()
    except Exception as e:  # noqa: BLE001 - whatever the decoder says, the file is not whole
        raise IncompleteWrite(f"the written file does not decode ({type(e).__name__}: {e}); "
                              "is the disk full, or a file-size limit (ulimit -f) reached?") from None


class IncompleteWrite(OSError):
    """A file was written without error but does not read back whole."""


def write_image(path: PathLike, native: np.ndarray, photo: Photo, quality: int = 95,
                writer: Callable = atomic_write) -> Path:
    """Save `native` pixels (the photo's mode) to `path` in the photo's output format, keeping its
    ICC profile, EXIF (orientation already applied) and DPI. Whole file or nothing: the file is
    decoded back before it takes its name. `writer(path, write, verify)`: how (default
    `atomic_write`)."""
    path = Path(path)
    im = to_pil(native, photo.mode)
    fmt = output_format(photo)
    kwargs = {}
    info = photo.info
    if info.get("icc_profile") and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kwargs["icc_profile"] = info["icc_profile"]
    if info.get("exif") is not None and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        kwargs["exif"] = info["exif"]
    if info.get("dpi") and fmt in ("JPEG", "PNG", "TIFF", "BMP"):
        kwargs["dpi"] = info["dpi"]
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = int(quality)
    if fmt == "JPEG" and info.get("subsampling", -1) in (0, 1, 2):
        kwargs["subsampling"] = info["subsampling"]
    if fmt == "TIFF" and info.get("compression") in LOSSLESS_TIFF:
        kwargs["compression"] = info["compression"]
    writer(path, lambda tmp: im.save(tmp, format=fmt, **kwargs), check_decodes)
    return path


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Float pixels in levels of 255 -> uint8, rounded to nearest (ties to even) and clipped."""
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)


def tensor_to_uint8(t) -> np.ndarray:
    """A (3, H, W) tensor in [-1, 1] (a network's image) -> (H, W, 3) uint8."""
    return to_uint8(((t.detach().float().clamp(-1, 1) + 1) * 127.5).permute(1, 2, 0).cpu().numpy())


def write_rgb(path: PathLike, rgb: np.ndarray, quality: int = 90, writer: Callable = atomic_write) -> Path:
    """Save an (H, W, 3) or (H, W) array (masks, comparisons, synthesized pairs) as JPEG for a
    .jpg/.jpeg name, else PNG; float pixels (levels of 255) are rounded. Whole file or nothing,
    decoded back before it takes its name."""
    path = Path(path)
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    im = Image.fromarray(np.ascontiguousarray(rgb if rgb.dtype == np.uint8 else to_uint8(rgb)))
    kwargs = {"quality": int(quality)} if fmt == "JPEG" else {}
    writer(path, lambda tmp: im.save(tmp, format=fmt, **kwargs), check_decodes)
    return path
