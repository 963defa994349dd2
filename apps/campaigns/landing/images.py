"""
Hero images uploaded in the landing editor, checked and cleaned before anything is stored: the size is capped
before a byte is decoded, Pillow reads the header to learn the type (JPEG, PNG or WebP only: the content decides,
never the name or the browser's content type) and the dimensions (capped before decoding), then decodes the
image and writes it again, which drops EXIF (camera, GPS), XMP, ICC profiles and text chunks; the EXIF
orientation is applied first so a phone photo stays upright. Model-free: the service stores the result.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from PIL import Image, ImageOps, UnidentifiedImageError

# Pillow's format name → (the extension we store, the content type we serve)
FORMATS = {"JPEG": ("jpg", "image/jpeg"), "PNG": ("png", "image/png"), "WEBP": ("webp", "image/webp")}


@dataclass(frozen=True)
class CleanImage:
    content: bytes
    extension: str
    content_type: str
    width: int
    height: int


def _refuse(message: str) -> ValidationError:
    return ValidationError(message, code="invalid_image")


def image_clean(data: bytes) -> CleanImage:
    """The image re-encoded without metadata, or ValidationError saying what is wrong with it."""
    max_bytes, max_side = settings.LANDING_IMAGE_MAX_BYTES, settings.LANDING_IMAGE_MAX_SIDE
    if len(data) > max_bytes:
        raise _refuse(f"The image is too large: at most {max_bytes // (1024 * 1024)} MB.")
    try:
        with Image.open(io.BytesIO(data)) as probe:  # reads the header only
            kind = probe.format or ""
            width, height = probe.size
            if kind not in FORMATS:
                raise _refuse("Upload a JPEG, PNG or WebP image.")
            if width > max_side or height > max_side:
                raise _refuse(f"The image is {width} x {height} px: at most {max_side} px on each side.")
            probe.verify()
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            upright = ImageOps.exif_transpose(image)
            keep: dict[str | tuple[int, int], Any] = {}
            if "transparency" in upright.info:
                keep["transparency"] = upright.info["transparency"]
            upright.info = keep  # Pillow writes what `info` holds (ICC profile, EXIF, text): nothing else survives
            out = io.BytesIO()
            if kind == "JPEG":
                upright.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
            elif kind == "PNG":
                upright.save(out, "PNG", optimize=True)
            else:
                if upright.mode not in ("RGB", "RGBA"):
                    upright = upright.convert("RGBA" if "A" in upright.getbands() or keep else "RGB")
                upright.save(out, "WEBP", quality=85)
            width, height = upright.size
    except ValidationError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as error:
        raise _refuse("This file is not an image we can read (JPEG, PNG or WebP).") from error
    extension, content_type = FORMATS[kind]
    return CleanImage(out.getvalue(), extension, content_type, width, height)
