"""Domain signals of landing pages (they only announce; the outbox row is what consumers act on)."""

from django.dispatch import Signal

form_submitted = Signal()  # kwargs: event, customer, submission
