"""
The promotion set's version stamp and the triggers that renew it (see `PromotionsVersion`): any insert, update,
delete (or, on PostgreSQL, truncate) of a campaign, incentive, limit or the promotion settings writes a new random
stamp into row 1 in the same transaction. Triggers rather than service calls because `QuerySet.update`, cascades and
the admin all write these tables, and a cache missing one of them would serve a stale promotion.
"""

from django.db import migrations, models

TABLES = ("campaigns_campaign", "campaigns_incentive", "campaigns_limit", "campaigns_promotionsettings")
VERSION = "campaigns_promotionsversion"

POSTGRESQL_FUNCTION = f"""
CREATE OR REPLACE FUNCTION campaigns_promotions_changed() RETURNS trigger AS $$
BEGIN
    INSERT INTO {VERSION} (id, stamp) VALUES (1, md5(random()::text || clock_timestamp()::text))
    ON CONFLICT (id) DO UPDATE SET stamp = EXCLUDED.stamp;
    RETURN NULL;
END
$$ LANGUAGE plpgsql
"""

SQLITE_STAMP = (
    f"INSERT INTO {VERSION} (id, stamp) VALUES (1, lower(hex(randomblob(16)))) "
    "ON CONFLICT (id) DO UPDATE SET stamp = excluded.stamp;"
)


def triggers_create(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRESQL_FUNCTION)
        for table in TABLES:
            schema_editor.execute(
                f"CREATE TRIGGER {table}_promotions_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION campaigns_promotions_changed()"
            )
    elif vendor == "sqlite":
        for table in TABLES:
            for event in ("INSERT", "UPDATE", "DELETE"):
                schema_editor.execute(
                    f"CREATE TRIGGER {table}_promotions_changed_{event.lower()} AFTER {event} ON {table} "
                    f"BEGIN {SQLITE_STAMP} END"
                )
    else:  # pragma: no cover - the project runs on PostgreSQL and SQLite only
        raise NotImplementedError(f"promotion set triggers for {vendor}")
    schema_editor.execute(f"INSERT INTO {VERSION} (id, stamp) VALUES (1, 'initial')")


def triggers_drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for table in TABLES:
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_promotions_changed ON {table}")
        else:
            for event in ("insert", "update", "delete"):
                schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_promotions_changed_{event}")
    if vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS campaigns_promotions_changed()")


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0017_redemption_discount_rolled_back")]

    operations = [
        migrations.CreateModel(
            name="PromotionsVersion",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("stamp", models.CharField(max_length=32)),
            ],
        ),
        migrations.RunPython(triggers_create, triggers_drop),
    ]
