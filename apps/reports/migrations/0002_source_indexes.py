"""
Indexes on the source tables that the incremental rollup refresh reads by change time (orders and runs by
`updated_at`, ledger entries, tag audits, refunds and tier events by `created_at`, memberships by
`joined_at`, reward redemptions by `issued_at`). They serve only the reports, so the reports app owns them;
plain SQL (IF NOT EXISTS) that SQLite and PostgreSQL both understand.
"""

from django.db import migrations

INDEXES = [
    ("reports_src_order_updated_idx", "customers_order", "updated_at"),
    ("reports_src_refund_created_idx", "customers_refund", "created_at"),
    ("reports_src_event_name_created_idx", "customers_domainevent", "name, created_at"),
    ("reports_src_entry_created_idx", "loyalty_ledgerentry", "created_at"),
    ("reports_src_membership_joined_idx", "loyalty_membership", "joined_at"),
    ("reports_src_redemption_issued_idx", "loyalty_redemption", "issued_at"),
    ("reports_src_run_updated_idx", "automations_workflowrun", "updated_at"),
    ("reports_src_tagaudit_created_idx", "tagging_tagaudit", "created_at"),
]


class Migration(migrations.Migration):
    dependencies = [
        ("reports", "0001_initial"),
        ("customers", "0006_fill_shop_amounts"),
        ("tagging", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})",
            reverse_sql=f"DROP INDEX IF EXISTS {name}",
        )
        for name, table, columns in INDEXES
    ]
