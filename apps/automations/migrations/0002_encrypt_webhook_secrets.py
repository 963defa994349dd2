"""
Webhook signing secrets move from plaintext to encrypted at rest (settings.FIELD_ENCRYPTION_KEY):
workflows' and versions' definitions get `encrypted:v1:…`, run steps' recorded inputs get the
redaction marker. One plaintext gets one ciphertext, so a workflow still equals its current version.
"""

from django.db import migrations

SECRET_PARAMS = {"notify.webhook": ("secret",)}  # the secret params as they stood at this migration
REDACTED = "whsec_…redacted"
PREFIX = "encrypted:v1:"


def _steps(steps):
    for step in steps if isinstance(steps, list) else []:
        if isinstance(step, dict):
            yield step
            if "if" in step:
                yield from _steps(step.get("then"))
                yield from _steps(step.get("else"))


def _secret_slots(definition):
    for step in _steps((definition or {}).get("steps") if isinstance(definition, dict) else None):
        params = step.get("params")
        if isinstance(params, dict):
            for name in SECRET_PARAMS.get(step.get("action"), ()):
                value = params.get(name)
                if isinstance(value, str) and value and not value.startswith(PREFIX) and value != REDACTED:
                    yield params, name


def encrypt_secrets(apps, schema_editor):
    from loyalty_site.lib.crypto import secret_encrypt

    sealed = {}

    def seal(plaintext):
        if plaintext not in sealed:
            sealed[plaintext] = secret_encrypt(plaintext)
        return sealed[plaintext]

    for model_name in ("Workflow", "WorkflowVersion"):
        model = apps.get_model("automations", model_name)
        for row in model.objects.only("pk", "definition").iterator():
            slots = list(_secret_slots(row.definition))
            if slots:
                for params, name in slots:
                    params[name] = seal(params[name])
                model.objects.filter(pk=row.pk).update(definition=row.definition)

    step_model = apps.get_model("automations", "WorkflowRunStep")
    for step in step_model.objects.filter(kind="action").only("pk", "inputs").iterator():
        inputs = step.inputs if isinstance(step.inputs, dict) else {}
        params = inputs.get("params")
        names = SECRET_PARAMS.get(inputs.get("action"), ())
        if isinstance(params, dict) and any(params.get(name) not in (None, "", REDACTED) for name in names):
            for name in names:
                if params.get(name) not in (None, ""):
                    params[name] = REDACTED
            step_model.objects.filter(pk=step.pk).update(inputs=inputs)


class Migration(migrations.Migration):
    dependencies = [("automations", "0001_initial")]

    operations = [migrations.RunPython(encrypt_secrets, migrations.RunPython.noop, elidable=True)]
