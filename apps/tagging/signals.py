"""Domain signals of the tagging app; sent once after commit with `event` (the outbox row)."""

from django.dispatch import Signal

customer_tag_added = Signal()  # customer, tag, customer_tag
customer_tag_removed = Signal()  # customer, tag_name
