"""
Hero image uploads in the landing editor: real images only (JPEG, PNG, WebP by content), size capped before
reading, dimensions capped before decoding, re-encoded without metadata, stored with Django's storage under
MEDIA_ROOT, served at /media/landing/…; alt text required; refused files change nothing; permissions.
"""

import hashlib
import io
import re

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, PngImagePlugin

from apps.campaigns.landing import services
from apps.campaigns.landing.models import LandingImage, LandingPage
from apps.platform.models import AuditEntry
from tests.campaigns.landing_helpers import editor_inputs, staff_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def _image(kind: str, size=(40, 20), mode="RGB", **save) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else None).save(out, kind, **save)
    return out.getvalue()


def _jpeg_with_camera_and_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to view
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0)}  # GPS latitude
    return _image("JPEG", exif=exif.tobytes())


def _upload(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def _nothing_stored(media) -> bool:
    files = [path for path in media.rglob("*") if path.is_file()] if media.exists() else []
    return files == [] and not LandingImage.objects.exists()


def test_a_phone_photo_is_stored_upright_without_its_camera_and_gps_metadata(client, media):
    image = services.landing_image_upload(upload=_upload(_jpeg_with_camera_and_gps()))

    stored = (media / image.file.name).read_bytes()
    digest = hashlib.sha256(stored).hexdigest()
    assert image.file.name == f"landing/{digest}.jpg" and image.url == f"/media/landing/{digest}.jpg"
    assert (image.content_type, image.width, image.height, image.size) == ("image/jpeg", 20, 40, len(stored))
    with Image.open(io.BytesIO(stored)) as reopened:
        assert (reopened.format, reopened.size, dict(reopened.getexif())) == ("JPEG", (20, 40), {})
    assert b"Exif" not in stored and b"PhoneMaker" not in stored
    assert AuditEntry.objects.filter(action="created", object_id=str(image.pk)).count() == 1

    served = client.get(image.url)
    assert (served.status_code, served["Content-Type"]) == (200, "image/jpeg")
    assert served["Cache-Control"] == "public, max-age=31536000, immutable"
    assert b"".join(served.streaming_content) == stored


def test_png_text_and_colour_profile_are_dropped_and_transparency_kept(media):
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Secret Person")
    data = _image("PNG", mode="RGBA", pnginfo=info, icc_profile=b"fake-icc-profile-bytes")

    image = services.landing_image_upload(upload=_upload(data, "logo.png", "image/png"))

    stored = (media / image.file.name).read_bytes()
    with Image.open(io.BytesIO(stored)) as reopened:
        assert (reopened.format, reopened.mode, reopened.text, reopened.info.get("icc_profile")) == (
            "PNG",
            "RGBA",
            {},
            None,
        )
    assert b"Secret Person" not in stored and image.file.name.endswith(".png")


def test_webp_is_accepted_and_the_same_image_twice_is_one_file_and_one_row(media):
    data = _image("WEBP")

    first = services.landing_image_upload(upload=_upload(data, "a.webp", "image/webp"))
    second = services.landing_image_upload(upload=_upload(data, "b.webp", "image/webp"))

    assert first.pk == second.pk and first.content_type == "image/webp"
    assert len(list((media / "landing").iterdir())) == 1


class CountingUpload(SimpleUploadedFile):
    """Records whether anything read it."""

    was_read = False

    def read(self, *args, **kwargs):
        self.was_read = True
        return super().read(*args, **kwargs)


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (b"just some text, not a picture", "photo.jpg", "This file is not an image we can read (JPEG, PNG or WebP)."),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "x.svg", "This file is not an image we can read"),
        ("GIF", "anim.gif", "Upload a JPEG, PNG or WebP image."),
        ("BMP", "old.bmp", "Upload a JPEG, PNG or WebP image."),
        ("TRUNCATED", "cut.jpg", "This file is not an image we can read"),
    ],
)
def test_files_that_are_not_jpeg_png_or_webp_images_are_refused_and_nothing_is_stored(media, data, name, message):
    if data in ("GIF", "BMP"):
        data = _image(data)
    elif data == "TRUNCATED":
        data = _image("JPEG", size=(400, 400))[:300]
    audit = AuditEntry.objects.count()

    with pytest.raises(ValidationError) as refused:
        services.landing_image_upload(upload=_upload(data, name))

    assert refused.value.message_dict["image"][0].startswith(message)
    assert _nothing_stored(media) and AuditEntry.objects.count() == audit


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(media, settings):
    settings.LANDING_IMAGE_MAX_BYTES = 1024 * 1024
    upload = CountingUpload("big.jpg", b"\xff" * (1024 * 1024 + 1), content_type="image/jpeg")

    with pytest.raises(ValidationError) as refused:
        services.landing_image_upload(upload=upload)

    assert refused.value.message_dict == {"image": ["The image is too large: at most 1 MB."]}
    assert upload.was_read is False and _nothing_stored(media)


def test_an_image_over_the_dimension_cap_is_refused_from_its_header(media, settings):
    settings.LANDING_IMAGE_MAX_SIDE = 100

    with pytest.raises(ValidationError) as refused:
        services.landing_image_upload(upload=_upload(_image("PNG", size=(101, 10)), "wide.png"))

    assert refused.value.message_dict == {"image": ["The image is 101 x 10 px: at most 100 px on each side."]}
    assert _nothing_stored(media)


def test_a_hero_image_needs_its_description():
    with pytest.raises(ValidationError) as refused:
        services.landing_page_save(
            slug="alt", title="Alt", blocks=[{"type": "hero", "title": "Hi", "image_url": "/media/landing/x.jpg"}]
        )

    assert refused.value.message_dict == {
        "blocks[0].image_alt": ["Describe the image for people who cannot see it (required with an image)."]
    }


def test_only_content_named_images_are_served(client):
    assert client.get("/media/landing/../../settings.py").status_code == 404
    assert client.get("/media/landing/" + "a" * 64 + ".jpg").status_code == 404  # not stored
    assert client.get("/media/landing/photo.jpg").status_code == 404


# --- The editor ---------------------------------------------------------------------------------------------


@pytest.fixture
def hero_page():
    return services.landing_page_save(
        slug="spring", title="Spring", blocks=[{"type": "hero", "title": "Spring", "text": ""}]
    )


def test_a_marketer_uploads_a_hero_image_with_its_description_and_publishes(client, hero_page):
    client.force_login(staff_user("marketer"))
    edit = f"/admin/campaigns/landing/{hero_page.pk}/"
    html = client.get(edit).content.decode()
    assert 'enctype="multipart/form-data"' in html and 'name="b-0-image_url-upload"' in html

    fields = {**editor_inputs(html), "op": "publish", "b-0-image_alt": "Blossoms in the park"}
    answer = client.post(edit, {**fields, "b-0-image_url-upload": _upload(_jpeg_with_camera_and_gps())})

    assert answer.status_code == 302
    image = LandingImage.objects.get()
    hero_page.refresh_from_db()
    assert hero_page.blocks[0]["image_url"] == image.url and hero_page.published_version.blocks == hero_page.blocks
    assert image.uploaded_by.username == "u-marketer"
    public = client.get("/p/spring/").content.decode()
    assert f'<img class="hero-image" src="{image.url}" alt="Blossoms in the park">' in public
    assert client.get(image.url).status_code == 200


def test_an_upload_without_a_description_keeps_the_image_on_screen_and_saves_nothing(client, hero_page):
    client.force_login(staff_user("marketer"))
    edit = f"/admin/campaigns/landing/{hero_page.pk}/"
    fields = {**editor_inputs(client.get(edit).content.decode()), "op": "save"}

    answer = client.post(edit, {**fields, "b-0-image_url-upload": _upload(_image("PNG"), "a.png")})

    html = answer.content.decode()
    image = LandingImage.objects.get()
    assert answer.status_code == 400
    assert "Describe the image for people who cannot see it (required with an image)." in html
    assert f'value="{image.url}"' in html  # the uploaded image is kept on screen: no second upload needed
    hero_page.refresh_from_db()
    assert "image_url" not in hero_page.blocks[0]


def test_a_refused_upload_is_shown_on_its_input_and_changes_nothing(client, hero_page, media):
    client.force_login(staff_user("marketer"))
    edit = f"/admin/campaigns/landing/{hero_page.pk}/"
    fields = {**editor_inputs(client.get(edit).content.decode()), "op": "save", "b-0-title": "Changed"}
    audit = AuditEntry.objects.count()

    answer = client.post(edit, {**fields, "b-0-image_url-upload": _upload(b"GIF89a-not-really", "x.gif")})

    html = answer.content.decode()
    assert answer.status_code == 400
    assert re.search(
        r'id="b-0-image_url-error" role="alert">This file is not an image we can read \(JPEG, PNG or WebP\).</p>', html
    )
    hero_page.refresh_from_db()
    assert hero_page.blocks[0]["title"] == "Spring"
    assert _nothing_stored(media) and AuditEntry.objects.count() == audit


def test_who_may_not_change_or_publish_pages_uploads_nothing(client, hero_page, media):
    edit = f"/admin/campaigns/landing/{hero_page.pk}/"
    client.force_login(staff_user("analyst"))
    fields = {**editor_inputs(client.get(edit).content.decode()), "op": "save", "b-0-image_alt": "x"}
    assert client.post(edit, {**fields, "b-0-image_url-upload": _upload(_image("PNG"), "a.png")}).status_code == 403

    editor = staff_user("marketer")
    editor.groups.clear()
    editor.user_permissions.add(*Permission.objects.filter(codename__in=["view_landingpage", "change_landingpage"]))
    client.force_login(editor)
    fields["op"] = "publish"
    assert client.post(edit, {**fields, "b-0-image_url-upload": _upload(_image("PNG"), "a.png")}).status_code == 403
    assert _nothing_stored(media)
    assert LandingPage.objects.get(pk=hero_page.pk).blocks == [{"type": "hero", "title": "Spring", "text": ""}]
