"""
Production: secrets from the environment, HTTPS-only cookies, HSTS, a Content-Security-Policy with
per-request nonces, a Permissions-Policy, static files served by WhiteNoise (run `collectstatic`).
"""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import MIDDLEWARE, env, install_secret
from .security import PRODUCTION_CONTENT_SECURITY_POLICY, PRODUCTION_PERMISSIONS_POLICY

DEBUG = False
SECRET_KEY = install_secret("SECRET_KEY")
FIELD_ENCRYPTION_KEY = install_secret("FIELD_ENCRYPTION_KEY")
if not SECRET_KEY or not FIELD_ENCRYPTION_KEY:
    raise ImproperlyConfigured(
        "Production needs SECRET_KEY and FIELD_ENCRYPTION_KEY (environment, or var/*.txt from scripts/run)."
    )

# TLS ends at the proxy, which says so in X-Forwarded-Proto; plain-http requests are redirected,
# except the load balancer's health probe.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# The builder's scripts read the CSRF token from the page's form input first, the cookie second: the
# cookie stays readable (Django's default), its value is useless cross-site.
CSRF_COOKIE_SAMESITE = "Lax"

CONTENT_SECURITY_POLICY = PRODUCTION_CONTENT_SECURITY_POLICY
PERMISSIONS_POLICY = PRODUCTION_PERMISSIONS_POLICY

# WhiteNoise serves `collectstatic`'s output (hashed names, compressed, cached forever) from each web
# process; it sits right after SecurityMiddleware.
MIDDLEWARE = [*MIDDLEWARE]
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "whitenoise.middleware.WhiteNoiseMiddleware"
)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
