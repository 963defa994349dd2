"""
Marketing and transactional consent per customer x channel x purpose, double opt-in, one-click unsubscribe
and the suppression list. `services.allows` is the one place that answers "may we send this customer this
kind of message on this channel?".
"""
