"""
Install the default referral page (`/me/r/<code>/`), published, so no visitor's GET ever has to create it (it
used to be created and published by the first visit). Skipped when a referral page exists already or the
`invite` address is taken. The blocks are frozen here as the referral template gave them on this date.
"""

from django.db import migrations
from django.utils import timezone

TITLE = "{inviter} invited you to {program}"
BLOCKS = [
    {
        "type": "hero",
        "title": "{inviter} invited you to {program}",
        "text": "Sign up below: your welcome points are waiting.",
        "button_label": "",
        "button_url": "",
    },
    {"type": "referral", "title": "What you get", "text": ""},
    {
        "type": "form",
        "title": "Sign up",
        "fields": [
            {"name": "email", "label": "E-mail", "required": True},
            {"name": "first_name", "label": "First name", "required": False},
        ],
        "consent_channels": ["email"],
        "consent_text": "Send me news and offers by e-mail.",
        "join_program": True,
        "voucher_campaign": None,
        "submit_label": "Sign up",
        "success_text": "Almost done: check your inbox and confirm your address.",
    },
    {"type": "footer", "text": "", "links": []},
]


def default_referral_page_install(apps, schema_editor):
    LandingPage = apps.get_model("campaigns", "LandingPage")
    LandingPageVersion = apps.get_model("campaigns", "LandingPageVersion")
    if LandingPage.objects.filter(template="referral").exists() or LandingPage.objects.filter(slug="invite").exists():
        return
    now = timezone.now()
    page = LandingPage.objects.create(
        slug="invite", title=TITLE, template="referral", blocks=BLOCKS, status="draft", created_at=now
    )
    version = LandingPageVersion.objects.create(page=page, number=1, title=TITLE, blocks=BLOCKS, created_at=now)
    LandingPage.objects.filter(pk=page.pk).update(status="published", published_version=version)


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0010_campaign_holdout")]

    operations = [migrations.RunPython(default_referral_page_install, migrations.RunPython.noop)]
