"""Messaging: deliveries on every channel, templates and brand, send governance."""
