"""ApiToken and IdempotencyRecord now belong to `platform` (which renamed their tables): state only."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("customers", "0002_admin_names"),
        ("platform", "0001_move_tokens_and_idempotency"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ApiToken"),
                migrations.DeleteModel(name="IdempotencyRecord"),
            ],
            database_operations=[],
        ),
    ]
