"""
The older per-rule caps become points limits of the rule (one capping mechanism: the platform's limit counters).

Forward, for every earning rule:
- `cap_per_day` / `cap_per_week` / `cap_per_month` (per customer) → a limit {points, period day/week/month, scope
  customer}; `cap_total` (the rule, every customer) → a limit {points, period total, scope rule};
- the usage carries over, so nobody earns twice what the cap allowed on the day of the upgrade: the counter of the
  current period (shop time zone) is seeded per customer with what the rule's lots of that period still hold
  (amount - taken back), and the total counter with `awarded_total` (what the old code counted); every such lot
  gets its EarningRuleTake, so a later refund of it frees the room like any earning made under a limit.
Set-based (one INSERT … SELECT per limit for counters and one for takes), whatever the number of customers.

Backward: limits of those shapes become caps again (per customer day/week/month → `cap_per_*`, the smallest when
there are several; rule-wide total → `cap_total`, `awarded_total` from its counter) and are deleted; limits of
other shapes (a rule-wide day limit, …) stay limits. `awarded_total` of rules without a total cap comes back as 0.
"""

from datetime import date, timedelta

import django.db.models.deletion
from django.db import migrations, models
from django.utils import timezone

TOTAL_BUCKET = date(1970, 1, 1)
CUSTOMER_CAPS = (("cap_per_day", "day"), ("cap_per_week", "week"), ("cap_per_month", "month"))


def _bucket(period, today):
    if period == "week":
        return today - timedelta(days=today.weekday())
    if period == "month":
        return today.replace(day=1)
    return today


def caps_to_limits(apps, schema_editor):
    EarningRule = apps.get_model("loyalty", "EarningRule")
    EarningRuleLimit = apps.get_model("loyalty", "EarningRuleLimit")
    EarningRuleCounter = apps.get_model("loyalty", "EarningRuleCounter")
    now = timezone.localtime(timezone.now())
    today = now.date()
    rules = EarningRule.objects.filter(
        models.Q(cap_per_day__isnull=False)
        | models.Q(cap_per_week__isnull=False)
        | models.Q(cap_per_month__isnull=False)
        | models.Q(cap_total__isnull=False)
    ).order_by("pk")
    with schema_editor.connection.cursor() as cursor:
        for rule in rules:
            for field, period in CUSTOMER_CAPS:
                cap = getattr(rule, field)
                if cap is None:
                    continue
                limit = EarningRuleLimit.objects.create(rule_id=rule.pk, points=cap, period=period, scope="customer")
                bucket = _bucket(period, today)
                start = now.replace(
                    year=bucket.year, month=bucket.month, day=bucket.day, hour=0, minute=0, second=0, microsecond=0
                )
                cursor.execute(
                    "INSERT INTO loyalty_earningrulecounter (limit_id, bucket, subject, limit_value, used) "
                    "SELECT %s, %s, 'customer:' || m.customer_id, %s, "
                    "CASE WHEN SUM(l.amount - l.reversed_amount) > %s THEN %s ELSE SUM(l.amount - l.reversed_amount) END "
                    "FROM loyalty_pointlot l JOIN loyalty_membership m ON m.id = l.membership_id "
                    "WHERE l.rule_id = %s AND l.created_at >= %s AND l.amount > l.reversed_amount "
                    "GROUP BY m.customer_id",
                    [limit.pk, bucket, cap, cap, cap, rule.pk, start],
                )
                cursor.execute(
                    "INSERT INTO loyalty_earningruletake (lot_id, counter_id, amount, returned) "
                    "SELECT l.id, c.id, l.amount - l.reversed_amount, 0 "
                    "FROM loyalty_pointlot l JOIN loyalty_membership m ON m.id = l.membership_id "
                    "JOIN loyalty_earningrulecounter c ON c.limit_id = %s AND c.bucket = %s "
                    "AND c.subject = 'customer:' || m.customer_id "
                    "WHERE l.rule_id = %s AND l.created_at >= %s AND l.amount > l.reversed_amount",
                    [limit.pk, bucket, rule.pk, start],
                )
            if rule.cap_total is not None:
                limit = EarningRuleLimit.objects.create(
                    rule_id=rule.pk, points=rule.cap_total, period="total", scope="rule"
                )
                counter = EarningRuleCounter.objects.create(
                    limit_id=limit.pk,
                    bucket=TOTAL_BUCKET,
                    subject="",
                    limit_value=rule.cap_total,
                    used=min(rule.awarded_total, rule.cap_total),
                )
                cursor.execute(
                    "INSERT INTO loyalty_earningruletake (lot_id, counter_id, amount, returned) "
                    "SELECT l.id, %s, l.amount - l.reversed_amount, 0 FROM loyalty_pointlot l "
                    "WHERE l.rule_id = %s AND l.amount > l.reversed_amount",
                    [counter.pk, rule.pk],
                )


def limits_to_caps(apps, schema_editor):
    EarningRule = apps.get_model("loyalty", "EarningRule")
    EarningRuleLimit = apps.get_model("loyalty", "EarningRuleLimit")
    EarningRuleCounter = apps.get_model("loyalty", "EarningRuleCounter")
    fields = {period: field for field, period in CUSTOMER_CAPS}
    converted = []
    for limit in EarningRuleLimit.objects.order_by("pk"):
        rule = EarningRule.objects.get(pk=limit.rule_id)
        if limit.scope == "customer" and limit.period in fields:
            field = fields[limit.period]
            current = getattr(rule, field)
            setattr(rule, field, limit.points if current is None else min(current, limit.points))
        elif limit.scope == "rule" and limit.period == "total" and rule.cap_total is None:
            used = EarningRuleCounter.objects.filter(limit_id=limit.pk).values_list("used", flat=True).first() or 0
            rule.cap_total = limit.points
            rule.awarded_total = min(int(used), limit.points)
        else:
            continue
        rule.save()
        converted.append(limit.pk)
    EarningRuleLimit.objects.filter(pk__in=converted).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0010_earning_rule_points_limits"),
    ]

    operations = [
        migrations.CreateModel(
            name="EarningRuleTake",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("amount", models.PositiveIntegerField()),
                ("returned", models.PositiveIntegerField(default=0)),
            ],
        ),
        migrations.AddField(
            model_name="earningruletake",
            name="counter",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="takes", to="loyalty.earningrulecounter"
            ),
        ),
        migrations.AddField(
            model_name="earningruletake",
            name="lot",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE, related_name="limit_takes", to="loyalty.pointlot"
            ),
        ),
        migrations.AddConstraint(
            model_name="earningruletake",
            constraint=models.UniqueConstraint(fields=("lot", "counter"), name="rule_take_uniq"),
        ),
        migrations.AddConstraint(
            model_name="earningruletake",
            constraint=models.CheckConstraint(
                condition=models.Q(("returned__lte", models.F("amount"))), name="rule_take_returned_lte_amount"
            ),
        ),
        migrations.RunPython(caps_to_limits, limits_to_caps),
        migrations.RemoveConstraint(
            model_name="earningrule",
            name="rule_cap_total",
        ),
        migrations.RemoveField(model_name="earningrule", name="awarded_total"),
        migrations.RemoveField(model_name="earningrule", name="cap_per_day"),
        migrations.RemoveField(model_name="earningrule", name="cap_per_month"),
        migrations.RemoveField(model_name="earningrule", name="cap_per_week"),
        migrations.RemoveField(model_name="earningrule", name="cap_total"),
    ]
