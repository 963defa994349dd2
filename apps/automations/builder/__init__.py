"""
The no-code workflow builder and the other marketer pages of the automations app (inside the Django admin).

Views only read through the engine's selectors/registries and write through its services; the pages'
JavaScript lives in `static/automations/builder/` (plain ES modules, no build step).
"""
