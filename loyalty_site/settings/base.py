"""Settings shared by every environment; everything environment-specific comes from env vars."""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)


def install_secret(name: str, default: str | None = None) -> str | None:
    """NAME from the environment, else the per-install file `scripts/run` generated (var/<name>.txt)."""
    value = env(name, default="")
    if value:
        return value
    path = BASE_DIR / "var" / f"{name.lower().replace('_', '-')}.txt"
    if path.is_file():
        return path.read_text().strip() or default
    return default


DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = install_secret("SECRET_KEY", default="dev-only-insecure-secret-key-change-me")
# Fernet keys (urlsafe base64, 32 bytes) encrypting stored secrets such as webhook signing secrets;
# comma-separated to rotate keys: the first encrypts, every one decrypts.
FIELD_ENCRYPTION_KEY = install_secret("FIELD_ENCRYPTION_KEY")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "apps.platform.console.apps.ConsoleAdminConfig",  # django.contrib.admin with the console site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "apps.platform",
    "apps.customers",
    "apps.tagging",
    "apps.loyalty",
    "apps.campaigns",
    "apps.automations",
    "apps.connectors",
    "apps.reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Refuses an oversized API body with a JSON 413 before anything parses it.
    "loyalty_site.lib.api.errors.ApiBodyLimitMiddleware",
    # An unknown /api/ URL is a JSON 404 even under DEBUG (whose HTML page skips handler404).
    "loyalty_site.lib.api.errors.ApiNotFoundJsonMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.platform.audit.AuditRequestMiddleware",
    # Django's, the storage made on first use (API requests never use it).
    "loyalty_site.lib.messages.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Headers only when their settings are set (production.py): Content-Security-Policy (a per-request
    # nonce, `{{ request.csp_nonce }}`, for the scripts of our pages) and Permissions-Policy.
    "loyalty_site.lib.csp.CSPMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login lockout (django-axes): after LOGIN_FAILURE_LIMIT wrong passwords for one username from one address,
# that pair is locked for LOGIN_LOCKOUT_MINUTES (429: an HTML page, or JSON for API/XHR clients).
AXES_ENABLED = env.bool("LOGIN_LOCKOUT_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = env.float("LOGIN_LOCKOUT_MINUTES", default=15.0) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "apps.platform.lockout.lockout_response"

ROOT_URLCONF = "loyalty_site.urls"
WSGI_APPLICATION = "loyalty_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the django-q2 worker share one SQLite file: WAL lets readers run beside the
    # writer, IMMEDIATE transactions take the write lock up front instead of failing on upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
# Django's psycopg connection pool (PostgreSQL only), on when DATABASE_POOL_MAX_SIZE > 0. Each process
# holds its own pool: a gunicorn worker needs as many connections as it has threads. Django refuses
# persistent connections with a pool, so conn_max_age is forced to 0 (the pool keeps them open instead).
DATABASE_POOL_MAX_SIZE = env.int("DATABASE_POOL_MAX_SIZE", default=0)
if DATABASE_POOL_MAX_SIZE > 0 and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(env.int("DATABASE_POOL_MIN_SIZE", default=1), DATABASE_POOL_MAX_SIZE),
        "max_size": DATABASE_POOL_MAX_SIZE,
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10.0),
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# Django's English date formats plus the time zone after every time of day (loyalty_site/formats/en/).
FORMAT_MODULE_PATH = ["loyalty_site.formats"]

# The shop (base) currency: customer totals, thresholds, earning, tiers and reports are kept in it
# (ISO 4217, at most 2 minor units: amounts are stored with 2 decimals). See loyalty_site/lib/money.py.
SHOP_CURRENCY = env("SHOP_CURRENCY", default="USD").strip().upper()
# What one point is worth in the shop currency for the liability figures (empty: the best money reward's
# rate, value ÷ points cost; else 0.01). See apps/reports/selectors.py point_value.
REPORTS_POINT_VALUE = env("REPORTS_POINT_VALUE", default="")

STATIC_URL = "static/"
# Chart.js (the reports' charts) is installed by scripts/bootstrap from npm (package-lock.json) and served
# from node_modules as static/vendor/chart.js/.
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/chart.js", BASE_DIR / "node_modules" / "chart.js" / "dist")]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "var" / "staticfiles")
# Uploaded files (landing-page hero images) through Django's default storage: MEDIA_ROOT on this machine,
# served at MEDIA_URL — landing images by the app itself (`/media/landing/…`, cached for a year, dev and
# production), or by the reverse proxy from MEDIA_ROOT if it is configured to (README, landing pages).
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "var" / "media")
MEDIA_URL = "/media/"
# Hero image uploads: the largest file accepted (checked before it is read) and the largest side in pixels
# (checked from the header, before decoding).
LANDING_IMAGE_MAX_BYTES = env.int("LANDING_IMAGE_MAX_BYTES", default=5 * 1024 * 1024)
LANDING_IMAGE_MAX_SIDE = env.int("LANDING_IMAGE_MAX_SIDE", default=4000)

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="loyalty@localhost")
# The SMTP backend's server, read from the environment like the backend itself: without these a worker
# started with EMAIL_BACKEND=…smtp.EmailBackend talked to localhost:25 whatever the deployment said.
# The timeout (seconds) keeps a stalled server from holding a worker past the django-q2 task timeout.
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.float("EMAIL_TIMEOUT", default=30.0)
# Messaging (apps/customers/messaging). E-mail providers through django-anymail: set EMAIL_BACKEND to e.g.
# anymail.backends.mailgun.EmailBackend (or amazon_ses, postmark, sendgrid, brevo, ...) and ANYMAIL to its
# settings as JSON, e.g. ANYMAIL='{"MAILGUN_API_KEY": "...", "MAILGUN_SENDER_DOMAIN": "mg.example.com"}'.
ANYMAIL = env.json("ANYMAIL", default={})
MESSAGING_MESSAGE_ID_DOMAIN = env("MESSAGING_MESSAGE_ID_DOMAIN", default="loyalty.localhost")
MESSAGING_MAX_ATTEMPTS = env.int("MESSAGING_MAX_ATTEMPTS", default=5)
SMS_BACKEND = env("SMS_BACKEND", default="apps.customers.messaging.sms.ConsoleSmsBackend")
SMS_FILE_PATH = env("SMS_FILE_PATH", default="")
SMS_API_URL = env("SMS_API_URL", default="https://api.twilio.com")
SMS_ACCOUNT_SID = env("SMS_ACCOUNT_SID", default="")
SMS_AUTH_TOKEN = env("SMS_AUTH_TOKEN", default="")
SMS_FROM = env("SMS_FROM", default="")
SMS_TIMEOUT_SECONDS = env.float("SMS_TIMEOUT_SECONDS", default=10.0)

# Largest request body read into memory (bytes). API requests above it are refused with a JSON 413
# before parsing; a batch of 1,000 typical orders is well below the default.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=2_621_440)
# The console's CSV import: largest file accepted (bytes, checked before the upload is parsed) and most rows.
CSV_IMPORT_MAX_BYTES = env.int("CSV_IMPORT_MAX_BYTES", default=5 * 1024 * 1024)
CSV_IMPORT_MAX_ROWS = env.int("CSV_IMPORT_MAX_ROWS", default=100_000)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.platform.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    # Every view declares its permissions (apps/platform/permissions.py); an undeclared one is refused.
    "DEFAULT_PERMISSION_CLASSES": [
        "apps.platform.permissions.TokenScopes",
        "apps.platform.permissions.ModelPermissions",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.platform.throttling.TokenRateThrottle",
        "apps.platform.throttling.IPRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "token": env("API_THROTTLE_TOKEN", default="1200/min"),
        "ip": env("API_THROTTLE_IP", default="600/min"),
        "auth_failure": env("API_THROTTLE_AUTH_FAILURES", default="20/min"),
    },
    "DEFAULT_FILTER_BACKENDS": ["loyalty_site.lib.api.filters.BoundedFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "loyalty_site.lib.api.pagination.StandardPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "loyalty_site.lib.api.errors.exception_handler",
    # JSON only, with the nesting depth checked before parsing (a deep body is a 400, not a 500).
    "DEFAULT_PARSER_CLASSES": ["loyalty_site.lib.api.parsers.BoundedJSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# API tokens, their users and permissions are cached per web process this long (seconds; 0: read every
# request). A change is seen at once in the process that made it and, with a shared CACHE_URL, everywhere;
# otherwise within this many seconds (apps/platform/authentication.py).
API_AUTH_CACHE_SECONDS = env.float("API_AUTH_CACHE_SECONDS", default=5.0)

# The statements every promotions validation runs are prepared once per PostgreSQL connection (their planning was
# most of the database's work per validation). Off behind a pooler in transaction mode that cannot keep prepared
# statements (PgBouncer before 1.21): apps/campaigns/promotions/promotion_set.py, `hot_cursor`.
PROMOTIONS_PREPARED_STATEMENTS = env.bool("PROMOTIONS_PREPARED_STATEMENTS", default=True)

API_DOCS_PUBLIC = env.bool("API_DOCS_PUBLIC", default=False)
SPECTACULAR_SETTINGS = {
    "TITLE": "Loyalty Site API",
    "DESCRIPTION": (
        "Feed customers, orders, refunds, carts and custom events; read tags, loyalty balances and "
        "workflow runs. Authenticate with `Authorization: Bearer <token>` "
        "(`python manage.py create_api_token <username>`). Every POST accepts an `Idempotency-Key` "
        "header: a replay returns the first response and has no second effect."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI is served from the installed sidecar package: no CDN needed.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema and the docs need a session or a token unless API_DOCS_PUBLIC=true.
    "SERVE_PERMISSIONS": [
        "rest_framework.permissions.AllowAny" if API_DOCS_PUBLIC else "rest_framework.permissions.IsAuthenticated"
    ],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "loyalty_site.lib.api.schema.document_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "OrderChannelEnum": "apps.customers.choices.OrderChannel",
        "RuleKindEnum": "apps.loyalty.choices.RuleKind",
        "RewardKindEnum": "apps.loyalty.choices.RewardKind",
        "CustomerStatusEnum": "apps.customers.choices.CustomerStatus",
        "EffectKindEnum": "apps.campaigns.promotions.choices.EffectKind",
        "ConsentStatusEnum": "apps.customers.consent.choices.ConsentStatus",
        "ConsentChannelEnum": "apps.customers.consent.choices.Channel",
        "LimitScopeEnum": "apps.campaigns.promotions.choices.LimitScope",
        "RuleLimitScopeEnum": "apps.loyalty.choices.RuleLimitScope",
        "TemplateChannelEnum": "apps.customers.messaging.templating.choices.TemplateChannel",
    },
}

# django-q2. `timeout` must stay below `retry` or a slow task is re-delivered while still running;
# attempts are capped so a poison task cannot loop forever (checked at start-up by the automations app).
REDIS_URL = env("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "loyalty",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": env.int("Q_TIMEOUT", default=120),
    "retry": env.int("Q_RETRY", default=180),
    "max_attempts": env.int("Q_MAX_ATTEMPTS", default=3),
    "ack_failures": True,
    "catch_up": False,
    # Successful task results are not kept: workflow runs and their steps are the record, and the
    # ORM broker would otherwise write (and count) a result row per task.
    "save_limit": -1,
    "poll": 0.2,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# The default cache holds API throttle counters and the cockpit link rate limits. Per process by default;
# with several web processes set CACHE_URL (e.g. `redis://127.0.0.1:6379/1`) so they share one count.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}
# Run enqueued tasks inline right after the commit instead of queueing them (tests, demos, one-process
# set-ups without a `qcluster`); read by `loyalty_site.lib.tasks.enqueue_on_commit`, the one enqueue helper.
TASKS_SYNC = env.bool("TASKS_SYNC", default=False)

# Automation engine knobs.
AUTOMATIONS_MAX_CHAIN_DEPTH = env.int("AUTOMATIONS_MAX_CHAIN_DEPTH", default=5)
# Outbox events one engine task claims and processes in one transaction on PostgreSQL (1: one event a task).
AUTOMATIONS_EVENT_BATCH = env.int("AUTOMATIONS_EVENT_BATCH", default=50)
# Outbox events loyalty's earning task claims and earns in one transaction on PostgreSQL (1: one event a task).
LOYALTY_EVENT_BATCH = env.int("LOYALTY_EVENT_BATCH", default=50)
# Seconds an outbox drain (engine, loyalty) lingers after a short claim, holding its mark so writes meanwhile
# send no task of their own (`loyalty_site.lib.tasks.drain_run`); 0 turns lingering off.
DRAIN_LINGER_SECONDS = env.float("DRAIN_LINGER_SECONDS", default=0.05)
AUTOMATIONS_RUN_RETENTION_DAYS = env.int("AUTOMATIONS_RUN_RETENTION_DAYS", default=90)
AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE = env.bool("AUTOMATIONS_WEBHOOK_ALLOW_PRIVATE", default=False)
AUTOMATIONS_WEBHOOK_REQUIRE_HTTPS = env.bool("AUTOMATIONS_WEBHOOK_REQUIRE_HTTPS", default=not DEBUG)

# Store connectors: the largest webhook body read (bytes; larger is 413 before reading), and whether pushes
# to a shop's API may go to private addresses / plain http (tests run a fake shop on 127.0.0.1).
CONNECTORS_MAX_BODY_BYTES = env.int("CONNECTORS_MAX_BODY_BYTES", default=1_048_576)
CONNECTORS_PUSH_ALLOW_PRIVATE = env.bool("CONNECTORS_PUSH_ALLOW_PRIVATE", default=False)
CONNECTORS_PUSH_REQUIRE_HTTPS = env.bool("CONNECTORS_PUSH_REQUIRE_HTTPS", default=not DEBUG)

# Customer cockpit links (/me/<token>/): lifetime, and how many "e-mail me a link" requests one client
# address or one e-mail address may make per hour (counted in the default cache).
LOYALTY_COCKPIT_LINK_MAX_AGE_DAYS = env.int("LOYALTY_COCKPIT_LINK_MAX_AGE_DAYS", default=30)
LOYALTY_COCKPIT_LINK_REQUESTS_PER_HOUR = env.int("LOYALTY_COCKPIT_LINK_REQUESTS_PER_HOUR", default=5)
# Landing-page forms (apps/campaigns/landing): bot traps without third parties.
LANDING_FORM_MIN_SECONDS = env.int("LANDING_FORM_MIN_SECONDS", default=3)
LANDING_FORM_SUBMISSIONS_PER_HOUR = env.int("LANDING_FORM_SUBMISSIONS_PER_HOUR", default=10)
# Storefront widget (apps/loyalty/widget): the shop origins allowed to call it (CORS), token lifetime.
LOYALTY_WIDGET_ALLOWED_ORIGINS = env.list("LOYALTY_WIDGET_ALLOWED_ORIGINS", default=[])
LOYALTY_WIDGET_TOKEN_MAX_AGE_SECONDS = env.int("LOYALTY_WIDGET_TOKEN_MAX_AGE_SECONDS", default=900)

# Consent (apps/customers/consent): the absolute base of links in messages (unsubscribe, double opt-in);
# whether a self-service marketing e-mail sign-up (API, landing form) waits for a confirmation click; how
# long a confirmation link works; the shared secret of the generic bounce/complaint endpoint (empty: off).
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")
CONSENT_DOUBLE_OPT_IN = env.bool("CONSENT_DOUBLE_OPT_IN", default=False)
CONSENT_CONFIRM_MAX_AGE_HOURS = env.int("CONSENT_CONFIRM_MAX_AGE_HOURS", default=72)
CONSENT_BOUNCE_WEBHOOK_SECRET = env("CONSENT_BOUNCE_WEBHOOK_SECRET", default="")

# /healthz: the worker is "down" when the schedules are overdue by more than this (the scheduler
# ticks every ~30 s), the outbox is "lagging" when an unprocessed trigger event is older than this.
HEALTHZ_WORKER_MAX_OVERDUE_SECONDS = env.int("HEALTHZ_WORKER_MAX_OVERDUE_SECONDS", default=300)
HEALTHZ_OUTBOX_MAX_LAG_SECONDS = env.int("HEALTHZ_OUTBOX_MAX_LAG_SECONDS", default=300)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
