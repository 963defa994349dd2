"""Local development: debug on, console e-mail, webhooks may use plain http."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
AUTOMATIONS_WEBHOOK_REQUIRE_HTTPS = env.bool("AUTOMATIONS_WEBHOOK_REQUIRE_HTTPS", default=False)
