"""Avatars: uploads checked and re-encoded, and a default for everyone else.

An upload is never served as sent. Pillow reads only PNG and JPEG; the
image's size is read from its header and refused before any pixel is
decoded if either side is over the bound, so a small file that claims to be
huge (a decompression bomb) costs nothing. The pixels are then decoded,
converted to RGBA, scaled to fit ``SIDE`` and written out as a new PNG
without any of the upload's metadata or extra chunks.

Players without one get a generated picture: a symmetric 5 by 5 pattern in
one colour, both drawn from the SHA-256 of their player ID, so it is stable
and needs no storage.
"""

from __future__ import annotations

import hashlib
import io
import warnings

from PIL import Image

from ..errors import ClientError

SIDE = 256  # pixels of either side of a stored avatar
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG"}
DEFAULT_SIDE = 160  # 5 cells of 32 pixels
# Pillow's own bomb guard, as a second line behind the side check: an image
# over twice this raises instead of decoding.
Image.MAX_IMAGE_PIXELS = 4096 * 4096


def reencode(data: bytes, media_type: str, max_side: int) -> bytes:
    """The upload as a fresh PNG of at most SIDE x SIDE; ClientError if unfit.

    Blocking (decoding takes milliseconds): run it in a thread.
    """
    wanted = FORMATS.get(media_type)
    if wanted is None:
        raise ClientError("unsupported_media_type", "send image/png or image/jpeg")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[wanted])
            width, height = image.size
            if width > max_side or height > max_side:
                raise ClientError(
                    "image_too_large", f"at most {max_side}x{max_side} pixels"
                )
            image.load()
            pixels = image.convert("RGBA")
    except ClientError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ClientError("image_too_large", "too many pixels") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        # UnidentifiedImageError is an OSError; truncated data is too.
        raise ClientError("invalid_image", f"not a {wanted} we can read") from exc
    pixels.thumbnail((SIDE, SIDE))
    out = io.BytesIO()
    pixels.save(out, "PNG", optimize=True)
    return out.getvalue()


def default_avatar(player_id: str) -> bytes:
    """The generated PNG for a player without an avatar."""
    digest = hashlib.sha256(player_id.encode("utf-8")).digest()
    colour = (digest[0], digest[1], digest[2], 255)
    cells = Image.new("RGBA", (5, 5), (240, 240, 240, 255))
    for row in range(5):
        for col in range(3):
            if digest[3 + row * 3 + col] & 1:
                cells.putpixel((col, row), colour)
                cells.putpixel((4 - col, row), colour)
    picture = cells.resize((DEFAULT_SIDE, DEFAULT_SIDE), Image.Resampling.NEAREST)
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()
