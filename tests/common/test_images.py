import io

import numpy as np
import pytest
from PIL import Image

from gensc.common.errors import InvalidInput
from gensc.common.images import decode_image, encode_png


def _encode(img: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


RGB = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)


def test_png_round_trip():
    img, notes = decode_image(encode_png(RGB))
    assert np.array_equal(img, RGB) and notes == []


@pytest.mark.parametrize(
    "data,match",
    [
        (b"", "empty"),
        (b"not an image at all", "not a decodable image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "image"),
    ],
)
def test_bad_bytes(data, match):
    with pytest.raises(InvalidInput, match=match):
        decode_image(data)


def test_truncated_png():
    with pytest.raises(InvalidInput):
        decode_image(encode_png(RGB)[:-30])


def test_pixel_limit_checked_before_decoding():
    big = _encode(Image.new("L", (3000, 3000)), "PNG")
    with pytest.raises(InvalidInput, match="over the limit"):
        decode_image(big, max_pixels=1_000_000)


@pytest.mark.parametrize(
    "mode,fmt,note",
    [
        ("CMYK", "JPEG", "CMYK"),
        ("P", "PNG", "P"),
        ("L", "PNG", "L"),
        ("RGBA", "PNG", "alpha"),
        ("LA", "PNG", "LA"),
        ("I;16", "PNG", "16"),
    ],
)
def test_unusual_modes_are_converted_with_a_note(mode, fmt, note):
    src = Image.fromarray(RGB)
    if mode == "I;16":
        src = Image.fromarray(np.arange(600, dtype=np.uint16).reshape(20, 30) * 100)
    else:
        src = src.convert(mode)
    img, notes = decode_image(_encode(src, fmt))
    assert img.shape == (20, 30, 3) and img.dtype == np.uint8
    assert any(note in n for n in notes)


def test_alpha_composited_over_white():
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    img, _ = decode_image(_encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (img == 255).all()


def test_float_mode_rejected():
    with pytest.raises(InvalidInput, match="unsupported image mode"):
        decode_image(_encode(Image.fromarray(np.ones((4, 4), np.float32)), "TIFF"))


def test_only_the_formats_asked_for():
    jpeg = _encode(Image.fromarray(RGB), "JPEG")
    img, _ = decode_image(jpeg, formats=("JPEG", "WEBP"))
    assert img.shape == RGB.shape
    with pytest.raises(InvalidInput, match="expected a JPEG or WEBP file, got PNG"):
        decode_image(encode_png(RGB), formats=("JPEG", "WEBP"))


def test_best_effort_decodes_a_truncated_file_and_leaves_pillow_as_it_was():
    from PIL import ImageFile

    big = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    cut = _encode(Image.fromarray(big), "JPEG")[:-300]
    with pytest.raises(InvalidInput):
        decode_image(cut)
    img, _ = decode_image(cut, best_effort=True)
    assert img.shape == (64, 64, 3)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_probe_reads_the_header_only():
    from gensc.common.images import probe_image

    assert probe_image(encode_png(RGB)) == ("PNG", 30, 20)
    with pytest.raises(InvalidInput, match="not a decodable image"):
        probe_image(b"GIF89a but not really")


def test_exif_orientation_is_applied_with_a_note(make_png):
    stored = np.zeros((20, 40, 3), np.uint8)
    stored[:, :20] = 255  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # view rotated 90 degrees clockwise
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, format="PNG", exif=exif.tobytes())
    upright, notes = decode_image(buf.getvalue())
    assert upright.shape == (40, 20, 3)  # turned: the stored left half is now on top
    assert upright[:20].min() == 255 and upright[20:].max() == 0
    assert notes == ["turned upright by its EXIF orientation (6)"]
    plain, notes = decode_image(make_png(stored))
    assert plain.shape == (20, 40, 3) and notes == []


def test_error_messages_carry_no_object_reprs():
    from gensc.common.errors import clean_message, error_fields

    with pytest.raises(InvalidInput) as e:
        decode_image(b"not an image at all")
    assert " at 0x" not in str(e.value) and "BytesIO" not in str(e.value)
    assert clean_message("cannot identify image file <_io.BytesIO object at 0x7f3e0ecfefc0>") == (
        "cannot identify image file the data"
    )
    assert "0x" not in error_fields(InvalidInput("bad <foo.Bar object at 0xdeadbeef>"), "sender")["message"]
