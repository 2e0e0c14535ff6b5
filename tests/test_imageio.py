"""Reading and writing photos: orientation, pixel modes, ICC profiles, bad files, atomic writes."""


import numpy as np
import pytest
from PIL import Image, ImageCms

from byeglasses.errors import InputError
from byeglasses.pipeline.imageio import compose, format_notes, output_name, read_image, write_image

from helpers import bomb_png


def _ramp(h=48, w=64):
    y, x = np.mgrid[:h, :w]
    return np.stack([x * 4, y * 5, (x + y) * 2], -1).astype(np.uint8)


def _roundtrip(tmp_path, src_name, changed=None, new_rgb=None):
    """Read a file, replace the `changed` pixels by `new_rgb`, write it, read it back."""
    photo = read_image(tmp_path / src_name)
    if changed is None:
        changed = np.zeros(photo.rgb.shape[:2], bool)
    native = compose(photo, photo.rgb if new_rgb is None else new_rgb, changed)
    out = write_image(tmp_path / "out" / output_name(photo), native, photo)
    return photo, Image.open(out)


def test_exif_orientation_is_applied_and_dropped(tmp_path):
    rgb = _ramp()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(rgb).save(tmp_path / "o.png", exif=exif)
    photo, out = _roundtrip(tmp_path, "o.png")
    assert photo.rgb.shape == (64, 48, 3)
    np.testing.assert_array_equal(photo.rgb, np.rot90(rgb, k=-1))
    assert out.getexif().get(0x0112, 1) == 1
    np.testing.assert_array_equal(np.asarray(out), photo.rgb)


def test_icc_profile_and_format_kept(tmp_path):
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(_ramp()).save(tmp_path / "c.jpeg", quality=90, icc_profile=icc)
    photo, out = _roundtrip(tmp_path, "c.jpeg")
    assert out.format == "JPEG" and out.info.get("icc_profile") == icc
    assert output_name(photo) == "c.jpeg"


def test_greyscale_stays_greyscale_with_untouched_pixels_exact(tmp_path):
    grey = _ramp()[..., 0]
    Image.fromarray(grey).save(tmp_path / "g.png")
    changed = np.zeros(grey.shape, bool)
    changed[10:20, 10:20] = True
    new = np.full(grey.shape + (3,), 200, np.uint8)
    photo, out = _roundtrip(tmp_path, "g.png", changed, new)
    arr = np.asarray(out)
    assert out.mode == "L" and photo.rgb.shape == grey.shape + (3,)
    np.testing.assert_array_equal(arr[~changed], grey[~changed])
    assert (arr[changed] == 200).all()


def test_rgba_keeps_alpha(tmp_path):
    rgba = np.dstack([_ramp(), np.arange(48 * 64).reshape(48, 64).astype(np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    changed = np.zeros((48, 64), bool)
    changed[:5] = True
    _, out = _roundtrip(tmp_path, "a.png", changed, np.zeros((48, 64, 3), np.uint8))
    arr = np.asarray(out)
    assert out.mode == "RGBA"
    np.testing.assert_array_equal(arr[..., 3], rgba[..., 3])
    np.testing.assert_array_equal(arr[5:], rgba[5:])
    assert (arr[:5, :, :3] == 0).all()


def test_cmyk_written_as_cmyk(tmp_path):
    cmyk = Image.fromarray(_ramp()).convert("CMYK")
    cmyk.save(tmp_path / "k.tif")
    changed = np.zeros((48, 64), bool)
    changed[0, 0] = True
    photo, out = _roundtrip(tmp_path, "k.tif", changed, np.zeros((48, 64, 3), np.uint8))
    assert out.mode == "CMYK" and any("CMYK" in n for n in photo.notes)
    arr, src = np.asarray(out), np.asarray(cmyk)
    np.testing.assert_array_equal(arr[~changed], src[~changed])


def test_16bit_grey_keeps_16_bits_outside_the_edit(tmp_path):
    deep = (np.arange(48 * 64).reshape(48, 64) * 21).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "d.png")
    changed = np.zeros(deep.shape, bool)
    changed[:, :8] = True
    photo, out = _roundtrip(tmp_path, "d.png", changed, np.full((48, 64, 3), 255, np.uint8))
    arr = np.asarray(out).astype(np.uint16)
    assert any("16-bit" in n for n in photo.notes)
    np.testing.assert_array_equal(arr[~changed], deep[~changed])
    assert (arr[changed] == 65535).all()


def test_palette_gif_becomes_png(tmp_path):
    Image.fromarray(_ramp()).convert("P").save(tmp_path / "p.gif")
    photo, out = _roundtrip(tmp_path, "p.gif")
    assert out.format == "PNG" and output_name(photo) == "p.png"
    assert any("written as PNG" in n for n in format_notes(photo))




@pytest.mark.parametrize("name, make, expected", [
    ("empty.jpg", lambda p: p.write_bytes(b""), "empty file"),
    ("notes.png", lambda p: p.write_text("not a picture"), "not an image"),
    ("cut.png", lambda p: p.write_bytes(_png_bytes()[:-200]), "corrupt or truncated"),
    ("bomb.png", bomb_png, "decompression bomb"),
    ("missing.png", lambda p: None, "no such file"),
])
def test_bad_files_raise_input_error_naming_them(tmp_path, name, make, expected):
    make(tmp_path / name)
    with pytest.raises(InputError) as e:
        read_image(tmp_path / name)
    assert name in str(e.value) and expected in str(e.value)


def _png_bytes():
    import io

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def test_writes_leave_no_temporary_files(tmp_path):
    Image.fromarray(_ramp()).save(tmp_path / "r.png")
    _roundtrip(tmp_path, "r.png")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["r.png"]


def test_16bit_rgb_is_read_with_a_note(tmp_path):
    import cv2

    deep = (_ramp().astype(np.uint16) * 257)[..., ::-1]  # BGR for OpenCV
    cv2.imwrite(str(tmp_path / "d48.png"), np.ascontiguousarray(deep))
    photo, out = _roundtrip(tmp_path, "d48.png")
    assert any("8 bits per channel" in n for n in photo.notes)
    np.testing.assert_array_equal(np.asarray(out), _ramp())
