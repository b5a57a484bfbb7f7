"""One settings module, driven by environment variables with safe embedded defaults.

Nothing here needs a server: with no environment at all the project runs on a SQLite
file and a filesystem Celery broker under var/. Set DATABASE_URL and CELERY_BROKER_URL
to move to PostgreSQL and Redis (or RabbitMQ). See README.md for every variable.
"""

import os
import re
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

# A development key is only acceptable while DEBUG is on; production must set its own.
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not env_bool("ALLOW_INSECURE_SECRET_KEY", False):
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "django-insecure-local-development-key-not-for-production"  # noqa: S105

# Personal data at rest (accounts/crypto.py): contacts' e-mails and phones, customers'
# postal addresses. FIELD_ENCRYPTION_KEYS: comma-separated Fernet keys, the first encrypts
# and all decrypt (add a new key first, run `manage.py rotate_encryption_keys`, then drop
# the old one). FIELD_HASH_KEY: the HMAC key of the exact-lookup hashes (never rotated
# without re-hashing). Unset: keys derived from SECRET_KEY, refused by `check --deploy`.
FIELD_ENCRYPTION_KEYS = env_list("FIELD_ENCRYPTION_KEYS", "")
FIELD_HASH_KEY = os.environ.get("FIELD_HASH_KEY", "")
FIELD_KEYS_MAY_DERIVE = DEBUG or env_bool("ALLOW_INSECURE_SECRET_KEY", False)
# Retention (privacy/retention.py): erase customers whose accounts have been closed (no
# open invoice, no activity) for longer than this many years, nightly; 0 = off.
RETENTION_CLOSED_ACCOUNT_YEARS = int(os.environ.get("RETENTION_CLOSED_ACCOUNT_YEARS", "0"))

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "django_celery_beat",
    # Staff login security (see the block "Staff login, tokens and sessions" below).
    "django_otp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_totp",
    "two_factor",
    "two_factor.plugins.webauthn",
    "axes",
    "knox",
    "csp",
    "mozilla_django_oidc",
    "staff",
    "accounts",
    "cases",
    "dunning",
    "reporting",
    "predictions",
    "integrations",
    "privacy",
    "portal",
    "demo",
    "collections_mgmt",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "collections_mgmt.middleware.RefuseNulInQueryString",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "staff.second_factor.SecondFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "collections_mgmt.urls"
WSGI_APPLICATION = "collections_mgmt.wsgi.application"

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
                "csp.context_processors.nonce",
                "staff.context_processors.single_sign_on",
            ],
        },
    },
]

# Database: DATABASE_URL (postgres://user@host:5432/name) or a SQLite file under var/.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'collections.sqlite3'}"),
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The web server, the worker and beat share one file: wait for locks, write-ahead log.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # The allocation indexes' INCLUDE columns (index-only scans on PostgreSQL) are simply
    # left out on SQLite, which is fine for the embedded default.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français"), ("es", "Español")]
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
# The project's own translations (the debtor portal in German, French and Spanish): the .po
# files and the compiled .mo files are both committed, so running needs no gettext tools.
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
MEDIA_URL = "media/"

# Staff log in through django-two-factor-auth's wizard (password, then the second factor);
# the admin's own login page redirects there.
LOGIN_URL = "two_factor:login"
LOGIN_REDIRECT_URL = "admin:index"
LOGOUT_REDIRECT_URL = "two_factor:login"

# Security: strict whenever DEBUG is off (check --deploy is clean with these).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$"]
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Staff login, tokens and sessions (README "Staff login security"). Maintained packages do
# the work: django-axes (lockout), django-two-factor-auth on django-otp (TOTP, passkeys,
# recovery codes), django-rest-knox (hashed, expiring API tokens), django-csp (the CSP
# header), mozilla-django-oidc (optional single sign-on); staff/ only wires them together.
# A login is locked for this username from this IP after AXES_FAILURE_LIMIT failures in a
# row, for AXES_COOLOFF_MINUTES; managers unlock it under Axes -> Access attempts.
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AXES_COOLOFF_MINUTES", "30")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "admin/login_locked_out.html"
# Behind N trusted proxies, the client is the N-th address from the right of
# X-Forwarded-For (0: REMOTE_ADDR, for a server that faces the clients itself).
TRUSTED_PROXY_COUNT = int(os.environ.get("TRUSTED_PROXY_COUNT", "0"))
AXES_CLIENT_IP_CALLABLE = "staff.lockout.client_ip"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login outright
    "django.contrib.auth.backends.ModelBackend",
]
# The second factor is required for superusers and these groups, and for every staff user
# when MFA_REQUIRED_FOR_AGENTS is on; anyone may enrol, and once enrolled is always asked.
MFA_REQUIRED_GROUPS = env_list("MFA_REQUIRED_GROUPS", "Collections manager,Finance")
MFA_REQUIRED_FOR_AGENTS = env_bool("MFA_REQUIRED_FOR_AGENTS", False)
TWO_FACTOR_PATCH_ADMIN = True
TWO_FACTOR_REMEMBER_COOKIE_AGE = None  # no "trust this browser": every login asks
TWO_FACTOR_WEBAUTHN_RP_NAME = os.environ.get("TWO_FACTOR_WEBAUTHN_RP_NAME", "Collections")
# The passkeys' relying party: the host name staff use (unset: the request's host).
TWO_FACTOR_WEBAUTHN_RP_ID = os.environ.get("TWO_FACTOR_WEBAUTHN_RP_ID") or None
OTP_TOTP_ISSUER = os.environ.get("OTP_TOTP_ISSUER", "Collections")
# API tokens (django-rest-knox): stored as SHA-512 digests, valid API_TOKEN_TTL_DAYS.
API_TOKEN_TTL_DAYS = int(os.environ.get("API_TOKEN_TTL_DAYS", "90"))
REST_KNOX = {
    "TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
# Sessions end after this many idle minutes: every request moves the expiry forward.
SESSION_IDLE_TIMEOUT_MINUTES = int(os.environ.get("SESSION_IDLE_TIMEOUT_MINUTES", "30"))
SESSION_COOKIE_AGE = SESSION_IDLE_TIMEOUT_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True
# Content-Security-Policy (django-csp 4): scripts and style sheets only from this site or
# carrying the request's nonce; style attributes stay allowed (style-src-attr), which
# cannot run code. CSP_REPORT_ONLY=true sends it as report-only while trying a change.
_csp = {
    "default-src": [SELF],
    "script-src": [SELF, NONCE],
    "style-src": [SELF, NONCE],
    "style-src-elem": [SELF, NONCE],
    "style-src-attr": [UNSAFE_INLINE],
    "img-src": [SELF, "data:"],
    "font-src": [SELF],
    "connect-src": [SELF],
    "frame-src": [SELF],
    "frame-ancestors": [NONE],
    "form-action": [SELF],
    "object-src": [NONE],
    "base-uri": [SELF],
}
if env_bool("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": _csp}
else:
    CONTENT_SECURITY_POLICY = {"DIRECTIVES": _csp}
# Single sign-on through OpenID Connect, off unless OIDC_RP_CLIENT_ID is set: a provider's
# user logs in as the active, non-superuser staff account with the same (verified)
# e-mail address; nobody is created. The second factor is still asked where required.
OIDC_RP_CLIENT_ID = os.environ.get("OIDC_RP_CLIENT_ID", "")
OIDC_RP_CLIENT_SECRET = os.environ.get("OIDC_RP_CLIENT_SECRET", "")
OIDC_RP_SIGN_ALGO = os.environ.get("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_OP_AUTHORIZATION_ENDPOINT = os.environ.get("OIDC_OP_AUTHORIZATION_ENDPOINT", "")
OIDC_OP_TOKEN_ENDPOINT = os.environ.get("OIDC_OP_TOKEN_ENDPOINT", "")
OIDC_OP_USER_ENDPOINT = os.environ.get("OIDC_OP_USER_ENDPOINT", "")
OIDC_OP_JWKS_ENDPOINT = os.environ.get("OIDC_OP_JWKS_ENDPOINT", "")
OIDC_RP_SCOPES = "openid email"
OIDC_CREATE_USER = False
OIDC_LOGIN_LABEL = os.environ.get("OIDC_LOGIN_LABEL", "Single sign-on")
if OIDC_RP_CLIENT_ID:
    AUTHENTICATION_BACKENDS.append("staff.oidc.StaffOIDCBackend")
# Throttling and lockout counters live in the cache: set CACHE_URL (redis://...) so that
# every web process shares them; the default is per process.
CACHE_URL = os.environ.get("CACHE_URL", "")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
        if CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# Celery: CELERY_BROKER_URL (redis://127.0.0.1:6379/0, amqp://guest@127.0.0.1//) or a
# filesystem broker under var/ that needs no server.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("queue", "control", "processed"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "control_folder": str(_broker_dir / "control"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# The inbox (integrations/intake/inbox.py): signed webhooks and bulk API requests are
# stored in the request and applied by workers. Events are drained in chunks of
# INBOX_DRAIN_CHUNK (one transaction each) at INBOX_DRAIN_PER_SECOND per running drain,
# which hands its worker back after INBOX_DRAIN_BUDGET_SECONDS; bulk requests start at
# INBOX_BULK_RATE_LIMIT per worker process (Celery's rate_limit syntax). Items still
# waiting after INBOX_SWEEP_AFTER_SECONDS (a lost task message, a broker that was down)
# are applied by the sweep, which runs every minute.
INBOX_DRAIN_CHUNK = int(os.environ.get("INBOX_DRAIN_CHUNK", "50"))
INBOX_DRAIN_PER_SECOND = float(os.environ.get("INBOX_DRAIN_PER_SECOND", "100"))
INBOX_DRAIN_BUDGET_SECONDS = float(os.environ.get("INBOX_DRAIN_BUDGET_SECONDS", "30"))
INBOX_BULK_RATE_LIMIT = os.environ.get("INBOX_BULK_RATE_LIMIT", "30/m")
INBOX_SWEEP_AFTER_SECONDS = int(os.environ.get("INBOX_SWEEP_AFTER_SECONDS", "300"))
INBOX_SWEEP_LIMIT = int(os.environ.get("INBOX_SWEEP_LIMIT", "2000"))

# E-mail: SMTP when EMAIL_HOST is set, otherwise messages are kept in the local outbox.
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "collections@example.com")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "587"))
    EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    # Kept in the database and readable in the admin under Dunning > Outbox messages.
    EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "dunning.outbox.OutboxEmailBackend")

# Twilio (SMS): without credentials SMS stay in the local outbox.
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
TWILIO_FROM_NUMBER = os.environ.get("TWILIO_FROM_NUMBER", "")
TWILIO_MESSAGING_SERVICE_SID = os.environ.get("TWILIO_MESSAGING_SERVICE_SID", "")

# Ledger defaults.
DEFAULT_CURRENCY = os.environ.get("DEFAULT_CURRENCY", "USD")
# Longest pause an agent may set without the manager permission.
AGENT_MAX_PAUSE_DAYS = int(os.environ.get("AGENT_MAX_PAUSE_DAYS", "14"))
AGING_BUCKET_EDGES = os.environ.get("AGING_BUCKET_EDGES", "30,60,90,120")  # aging report, days
# Reports can show every amount converted into this currency too (ISO 4217), at the ECB's
# euro reference rates (integrations/fx: `load_fx_rates`, daily at FX_RATES_LOAD_AT).
BASE_CURRENCY = os.environ.get("BASE_CURRENCY", "EUR").strip().upper()
if not re.fullmatch(r"[A-Z]{3}", BASE_CURRENCY):
    raise ImproperlyConfigured(f"BASE_CURRENCY must be an ISO 4217 code, not {BASE_CURRENCY!r}")
FX_RATES_URL = os.environ.get(
    "FX_RATES_URL", "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
)
FX_RATES_TIMEOUT_SECONDS = int(os.environ.get("FX_RATES_TIMEOUT_SECONDS", "30"))
FX_RATES_MAX_BYTES = int(os.environ.get("FX_RATES_MAX_BYTES", str(20 * 1024 * 1024)))
# Reports warn when the rate they use is older than this (weekends and holidays: 4 days).
FX_RATES_STALE_AFTER_DAYS = int(os.environ.get("FX_RATES_STALE_AFTER_DAYS", "7"))
# The admin changelists stop counting past this many rows (COUNT(*) is slow at scale).
ADMIN_COUNT_LIMIT = int(os.environ.get("ADMIN_COUNT_LIMIT", "10000"))
# A payment dated more than this many days after today is refused (a typo such as
# 2099-01-01); one day covers a bank in a time zone ahead of ours.
PAYMENT_FUTURE_DAYS_ALLOWED = int(os.environ.get("PAYMENT_FUTURE_DAYS_ALLOWED", "1"))
ADMIN_SEARCH_COUNT_LIMIT = int(os.environ.get("ADMIN_SEARCH_COUNT_LIMIT", "1000"))
# A console list exported to CSV/XLSX holds at most this many rows (accounts/list_exports.py);
# a longer list is refused with a request to filter it first.
LIST_EXPORT_MAX_ROWS = int(os.environ.get("LIST_EXPORT_MAX_ROWS", "100000"))
# Saved filters a user may keep per console list (staff/saved_filters.py).
SAVED_FILTERS_PER_LIST = int(os.environ.get("SAVED_FILTERS_PER_LIST", "30"))

REST_FRAMEWORK = {
    # A session counts only once its second factor is verified where the role needs one;
    # tokens are django-rest-knox's (hashed, expiring), and bad ones are throttled per IP.
    # Token first: a bad token then answers 401 with WWW-Authenticate rather than 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "staff.api_auth.ThrottledTokenAuthentication",
        "staff.api_auth.VerifiedSessionAuthentication",
    ],
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "rest_framework.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_THROTTLE_ANON", "60/min"),
        "user": os.environ.get("API_THROTTLE_USER", "3000/min"),
        "failed_token": os.environ.get("API_THROTTLE_FAILED_TOKEN", "10/min"),
    },
    "NUM_PROXIES": TRUSTED_PROXY_COUNT or None,
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api_policy.StrictModelPermissions"],
    "DEFAULT_PAGINATION_CLASS": "accounts.api_policy.NewestFirstPagination",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Collections Management API",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# Uploads (spreadsheets, bank files): a file over any of these is refused with a message
# naming the limit, before anything is read (integrations/uploads.py).
UPLOAD_MAX_BYTES = int(os.environ.get("UPLOAD_MAX_BYTES", str(100 * 1024 * 1024)))
UPLOAD_MAX_ROWS = int(os.environ.get("UPLOAD_MAX_ROWS", "500000"))
UPLOAD_MAX_CELLS = int(os.environ.get("UPLOAD_MAX_CELLS", "20000000"))
UPLOAD_MAX_DECOMPRESSED_BYTES = int(
    os.environ.get("UPLOAD_MAX_DECOMPRESSED_BYTES", str(500 * 1024 * 1024))
)
# Django keeps uploads up to this size in memory and spools larger ones to a temporary file.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Inside an uploaded .xlsx (a zip of XML): at most this many members, each expanding at
# most UPLOAD_MAX_COMPRESSION_RATIO times (checked on the bytes actually read, not on what
# the zip declares), and a shared-string table of at most this many strings and characters.
UPLOAD_MAX_ZIP_MEMBERS = int(os.environ.get("UPLOAD_MAX_ZIP_MEMBERS", "1000"))
UPLOAD_MAX_COMPRESSION_RATIO = int(os.environ.get("UPLOAD_MAX_COMPRESSION_RATIO", "200"))
UPLOAD_MAX_SHARED_STRINGS = int(os.environ.get("UPLOAD_MAX_SHARED_STRINGS", "3000000"))
UPLOAD_MAX_SHARED_STRING_CHARS = int(os.environ.get("UPLOAD_MAX_SHARED_STRING_CHARS", "40000000"))
# The import pages' preview reads and shows this many rows of the file, and writes nothing.
UPLOAD_PREVIEW_ROWS = int(os.environ.get("UPLOAD_PREVIEW_ROWS", "500"))
# A spreadsheet batch still "running" this many minutes after it started belongs to a
# process that died: the next import marks it failed, saying so.
INTAKE_BATCH_TIMEOUT_MINUTES = int(os.environ.get("INTAKE_BATCH_TIMEOUT_MINUTES", "60"))
# Django's own request limits (its defaults, stated): form fields, files, non-file bytes.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
DATA_UPLOAD_MAX_NUMBER_FILES = 10
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# Intake: a source is flagged in the health view after this many failures in a row.
INTAKE_FAILING_AFTER = int(os.environ.get("INTAKE_FAILING_AFTER", "3"))
# The health view's share of rows rejected and loaded with warnings covers this many days.
INTAKE_HEALTH_WINDOW_DAYS = int(os.environ.get("INTAKE_HEALTH_WINDOW_DAYS", "30"))
# Reconciliation: matches below this confidence wait for review instead of being booked.
RECONCILIATION_AUTO_BOOK_CONFIDENCE = os.environ.get("RECONCILIATION_AUTO_BOOK_CONFIDENCE", "0.9")
# Payment gateways and pay links.
STRIPE_API_KEY = os.environ.get("STRIPE_API_KEY", "")
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", "")
PAYMENTS_WEBHOOK_SECRET = os.environ.get("PAYMENTS_WEBHOOK_SECRET", "")
# Automatic payment (integrations/gateways/autopay.py; needs STRIPE_API_KEY): the payment
# methods a debtor may save (Stripe's names: card, sepa_debit, us_bank_account), the days
# after a failed charge on which it is tried again (then the agent gets a task), and
# whether invoices already overdue when the mandate is set up are charged too.
AUTOPAY_PAYMENT_METHOD_TYPES = env_list("AUTOPAY_PAYMENT_METHOD_TYPES", "card,sepa_debit")
AUTOPAY_RETRY_DAYS = [int(day) for day in env_list("AUTOPAY_RETRY_DAYS", "1,3,7")]
AUTOPAY_CHARGE_OVERDUE = env_bool("AUTOPAY_CHARGE_OVERDUE", True)
# Without Stripe, a pay link is this template filled with the invoice's fields.
PAY_LINK_TEMPLATE = os.environ.get(
    "PAY_LINK_TEMPLATE", "https://pay.example.com/invoices/{number}?customer={customer_ref}"
)
# The customer's own statement page (/statement/<token>/), the payment link of every
# message when an invoice has no pay link of its own: links expire after this many days,
# and one client address may open at most this many statement pages a minute.
STATEMENT_LINK_MAX_AGE_DAYS = int(os.environ.get("STATEMENT_LINK_MAX_AGE_DAYS", "90"))
STATEMENT_PAGE_REQUESTS_PER_MINUTE = int(os.environ.get("STATEMENT_PAGE_REQUESTS_PER_MINUTE", "30"))
# The debtor portal (portal/): a per-contact link in every message (accounts/portal_links.py)
# lasts this many days; a one-time code by e-mail lasts PORTAL_CODE_MINUTES and allows
# PORTAL_CODE_ATTEMPTS tries; a portal session ends after PORTAL_SESSION_MINUTES idle (at
# most SESSION_IDLE_TIMEOUT_MINUTES, which ends every session). One
# client address may make PORTAL_REQUESTS_PER_MINUTE portal requests a minute, and one
# e-mail address may ask for PORTAL_ACCESS_REQUESTS_PER_HOUR new links an hour.
PORTAL_LINK_MAX_AGE_DAYS = int(os.environ.get("PORTAL_LINK_MAX_AGE_DAYS", "45"))
PORTAL_CODE_MINUTES = int(os.environ.get("PORTAL_CODE_MINUTES", "15"))
PORTAL_CODE_ATTEMPTS = int(os.environ.get("PORTAL_CODE_ATTEMPTS", "5"))
PORTAL_SESSION_MINUTES = int(os.environ.get("PORTAL_SESSION_MINUTES", "30"))
PORTAL_REQUESTS_PER_MINUTE = int(os.environ.get("PORTAL_REQUESTS_PER_MINUTE", "120"))
PORTAL_ACCESS_REQUESTS_PER_HOUR = int(os.environ.get("PORTAL_ACCESS_REQUESTS_PER_HOUR", "5"))
# Bank-transfer instructions on the statement page and in messages: IBAN and BIC, or an
# account and routing number (US), or both; the payee defaults to COMPANY_NAME. Unset:
# the page asks the customer to contact us for the details.
BANK_TRANSFER_PAYEE = os.environ.get("BANK_TRANSFER_PAYEE", "")
BANK_TRANSFER_BANK_NAME = os.environ.get("BANK_TRANSFER_BANK_NAME", "")
BANK_TRANSFER_IBAN = os.environ.get("BANK_TRANSFER_IBAN", "")
BANK_TRANSFER_BIC = os.environ.get("BANK_TRANSFER_BIC", "")
BANK_TRANSFER_ACCOUNT_NUMBER = os.environ.get("BANK_TRANSFER_ACCOUNT_NUMBER", "")
BANK_TRANSFER_ROUTING_NUMBER = os.environ.get("BANK_TRANSFER_ROUTING_NUMBER", "")

# Dunning: a run also picks up invoices that reached a step up to this many days ago (a
# night the run did not happen); notices at or above this balance in any one currency wait
# for a manager when their step says "high value" (the fallback for currencies without a
# row under Dunning -> High-value thresholds, which managers edit in the admin).
DUNNING_CATCH_UP_DAYS = int(os.environ.get("DUNNING_CATCH_UP_DAYS", "3"))
DUNNING_HIGH_VALUE_THRESHOLD = os.environ.get("DUNNING_HIGH_VALUE_THRESHOLD", "10000")
# Escalation steps become review tasks for the least busy member of this group.
DUNNING_ESCALATION_GROUP = os.environ.get("DUNNING_ESCALATION_GROUP", "Collections manager")
COMPANY_NAME = os.environ.get("COMPANY_NAME", "Example Supplies Ltd")
EMAIL_MESSAGE_ID_DOMAIN = os.environ.get("EMAIL_MESSAGE_ID_DOMAIN", "collections.example.com")
# Inbound e-mail (issue #18, integrations/inbound/): debtors' replies reach the agent.
# INBOUND_REPLY_ADDRESS: the Reply-To of dunning e-mails, with a token naming the notice
# ("replies@in.example.com" becomes "replies+<token>@in.example.com"; "{token}" may place
# it); empty: no Reply-To, replies are threaded by In-Reply-To or the sender's address.
INBOUND_REPLY_ADDRESS = os.environ.get("INBOUND_REPLY_ADDRESS", "")
# A human reply pauses that customer's chasing for this many days (0: no pause).
INBOUND_REPLY_PAUSE_DAYS = int(os.environ.get("INBOUND_REPLY_PAUSE_DAYS", "3"))
# Mailgun inbound routes posting to /integrations/inbound/mailgun/ (unset: 503), and how
# old a signed timestamp may be.
MAILGUN_WEBHOOK_SIGNING_KEY = os.environ.get("MAILGUN_WEBHOOK_SIGNING_KEY", "")
INBOUND_SIGNATURE_MAX_AGE_SECONDS = int(os.environ.get("INBOUND_SIGNATURE_MAX_AGE_SECONDS", "900"))
# Postmark inbound webhook to /integrations/inbound/postmark/, with HTTP basic auth
# "user:password" in the URL Postmark is given (unset: 503).
POSTMARK_INBOUND_BASIC_AUTH = os.environ.get("POSTMARK_INBOUND_BASIC_AUTH", "")
# Bounds on what is stored: a whole request, attachments per message, bytes each, and the
# content types kept (others are recorded as refused, never a 500).
INBOUND_MAX_REQUEST_BYTES = int(os.environ.get("INBOUND_MAX_REQUEST_BYTES", str(30 * 1024 * 1024)))
INBOUND_MAX_ATTACHMENTS = int(os.environ.get("INBOUND_MAX_ATTACHMENTS", "10"))
INBOUND_MAX_ATTACHMENT_BYTES = int(
    os.environ.get("INBOUND_MAX_ATTACHMENT_BYTES", str(10 * 1024 * 1024))
)
INBOUND_ATTACHMENT_TYPES = env_list(
    "INBOUND_ATTACHMENT_TYPES",
    "application/pdf,image/png,image/jpeg,image/gif,text/plain,text/csv,message/rfc822,"
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet,"
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document,"
    "application/msword,application/vnd.ms-excel",
)
# IMAP polling for teams without an inbound provider (empty host: off). The periodic task
# (every five minutes) reads the folder read-only for messages not read before (by UID),
# at most INBOUND_IMAP_BATCH a poll.
INBOUND_IMAP_HOST = os.environ.get("INBOUND_IMAP_HOST", "")
INBOUND_IMAP_PORT = int(os.environ.get("INBOUND_IMAP_PORT", "993"))
INBOUND_IMAP_USER = os.environ.get("INBOUND_IMAP_USER", "")
INBOUND_IMAP_PASSWORD = os.environ.get("INBOUND_IMAP_PASSWORD", "")
INBOUND_IMAP_FOLDER = os.environ.get("INBOUND_IMAP_FOLDER", "INBOX")
INBOUND_IMAP_BATCH = int(os.environ.get("INBOUND_IMAP_BATCH", "200"))
# Bounces and complaints posted to /dunning/email-events/, signed with this (unset: 503).
EMAIL_EVENTS_WEBHOOK_SECRET = os.environ.get("EMAIL_EVENTS_WEBHOOK_SECRET", "")
# Fallback contact guards for customers no active contact rule matches (Dunning -> Contact
# rules, see README "Contact rules and public holidays"); the first migrate seeds the
# default rules with these values.
DUNNING_CONTACT_HOURS = (
    int(os.environ.get("DUNNING_CONTACT_FROM_HOUR", "8")),
    int(os.environ.get("DUNNING_CONTACT_UNTIL_HOUR", "21")),
)
# Weekdays with no contact, 0 = Monday ... 6 = Sunday.
DUNNING_NO_CONTACT_WEEKDAYS = tuple(
    int(day) for day in env_list("DUNNING_NO_CONTACT_WEEKDAYS", "6")
)
DUNNING_MAX_CONTACTS_PER_7_DAYS = int(os.environ.get("DUNNING_MAX_CONTACTS_PER_7_DAYS", "7"))
DUNNING_MAX_CONSUMER_CONTACTS_PER_MONTH = int(
    os.environ.get("DUNNING_MAX_CONSUMER_CONTACTS_PER_MONTH", "3")
)
# How many notices one sending task takes; the nightly run starts enough tasks for all.
DUNNING_SEND_CHUNK = int(os.environ.get("DUNNING_SEND_CHUNK", "500"))
# Crash-safe sending (dunning/sender.py): a sender leases this many notices at a time for
# DUNNING_CLAIM_LEASE_SECONDS (a dead worker's lease runs out and they are sendable again);
# a message still "sending" after DUNNING_SENDING_TIMEOUT_SECONDS (its worker died during
# the provider call) becomes "uncertain" for a manager, and is never re-sent blindly.
# Keep the timeout well above the longest provider call: EMAIL_TIMEOUT bounds SMTP's.
DUNNING_CLAIM_BATCH = int(os.environ.get("DUNNING_CLAIM_BATCH", "25"))
DUNNING_CLAIM_LEASE_SECONDS = int(os.environ.get("DUNNING_CLAIM_LEASE_SECONDS", "300"))
DUNNING_SENDING_TIMEOUT_SECONDS = int(os.environ.get("DUNNING_SENDING_TIMEOUT_SECONDS", "900"))
# Scheduled report e-mails left "sending" this long become "uncertain" the same way.
REPORT_SENDING_TIMEOUT_SECONDS = int(os.environ.get("REPORT_SENDING_TIMEOUT_SECONDS", "900"))
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "60"))

# Message templates (dunning/template_engine.py): what one rendering may produce, and how
# long it may take; a width-like filter argument (ljust, center, stringformat, floatformat,
# wordwrap, truncate*) over the last limit is refused when the template is saved and when
# it is rendered. Over any limit the preview shows the error and the sender fails the notice.
TEMPLATE_MAX_OUTPUT_CHARS = int(os.environ.get("TEMPLATE_MAX_OUTPUT_CHARS", "200000"))
TEMPLATE_MAX_RENDER_SECONDS = float(os.environ.get("TEMPLATE_MAX_RENDER_SECONDS", "2"))
TEMPLATE_MAX_FILTER_WIDTH = int(os.environ.get("TEMPLATE_MAX_FILTER_WIDTH", "1000"))

# Case work: a promise holds dunning until its date plus this many days; payment plans
# above this total (in the plan's currency) wait for a manager; installment reminders go
# out this many days before the due date.
PROMISE_GRACE_DAYS = int(os.environ.get("PROMISE_GRACE_DAYS", "3"))
PAYMENT_PLAN_APPROVAL_THRESHOLD = os.environ.get("PAYMENT_PLAN_APPROVAL_THRESHOLD", "5000")
INSTALLMENT_REMINDER_DAYS = int(os.environ.get("INSTALLMENT_REMINDER_DAYS", "3"))
# The debtor portal's own actions (portal/actions.py, README "The debtor portal"): a promise
# made there is for at most PORTAL_PROMISE_MAX_DAYS ahead and at least PORTAL_PROMISE_MIN_SHARE
# of the chosen invoices' open balance; a plan asked for there is accepted at once with at
# most PORTAL_PLAN_MAX_INSTALLMENTS monthly installments of at least PORTAL_PLAN_MIN_INSTALLMENT
# (in the invoices' currency) and a total at or under PAYMENT_PLAN_APPROVAL_THRESHOLD, its
# first installment at most PORTAL_PLAN_FIRST_DUE_MAX_DAYS ahead; other plans wait for a
# manager. Attachments (disputes, messages): at most PORTAL_UPLOAD_MAX_FILES files of
# PORTAL_UPLOAD_MAX_BYTES each, PDF, PNG, JPEG or plain text by their content.
PORTAL_PROMISE_MAX_DAYS = int(os.environ.get("PORTAL_PROMISE_MAX_DAYS", "30"))
PORTAL_PROMISE_MIN_SHARE = os.environ.get("PORTAL_PROMISE_MIN_SHARE", "0.5")
PORTAL_PLAN_MAX_INSTALLMENTS = int(os.environ.get("PORTAL_PLAN_MAX_INSTALLMENTS", "6"))
PORTAL_PLAN_MIN_INSTALLMENT = os.environ.get("PORTAL_PLAN_MIN_INSTALLMENT", "50")
PORTAL_PLAN_FIRST_DUE_MAX_DAYS = int(os.environ.get("PORTAL_PLAN_FIRST_DUE_MAX_DAYS", "30"))
PORTAL_UPLOAD_MAX_BYTES = int(os.environ.get("PORTAL_UPLOAD_MAX_BYTES", str(5 * 1024 * 1024)))
PORTAL_UPLOAD_MAX_FILES = int(os.environ.get("PORTAL_UPLOAD_MAX_FILES", "5"))
# Case work: outstanding invoices this many days past due raise a write-off/placement review
# task; the nightly risk scoring moves band-high customers into the high_risk segment (see
# README, "Risk score") unless they are strategic or have their own dunning policy.
WRITE_OFF_REVIEW_DAYS = int(os.environ.get("WRITE_OFF_REVIEW_DAYS", "120"))
RISK_DRIVES_SEGMENT = env_bool("RISK_DRIVES_SEGMENT", True)
# Predictions (predictions/, README "Predicting late payment"): an open invoice whose
# predicted probability of paying late is at least this is "predicted late" in the console.
PREDICTED_LATE_THRESHOLD = float(os.environ.get("PREDICTED_LATE_THRESHOLD", "0.5"))
# Training learns from invoices issued in this many days before the training day, at most
# this many (invoice, moment) rows (a seeded random sample above it).
PREDICTOR_TRAINING_DAYS = int(os.environ.get("PREDICTOR_TRAINING_DAYS", "1095"))
PREDICTOR_MAX_TRAINING_ROWS = int(os.environ.get("PREDICTOR_MAX_TRAINING_ROWS", "400000"))
# Threads the model libraries may use (OpenMP). One is safest on a worker that shares its
# cores: threads that wait for a busy core spin; raise it on a dedicated machine.
PREDICTOR_THREADS = int(os.environ.get("PREDICTOR_THREADS", "1"))
# Dunning experiments (dunning/variants.py): an adaptive step switches from weights to
# Thompson sampling once every active variant has this many notices with a known 14-day
# outcome (sent at least 14 days before the planning day).
EXPERIMENT_MIN_SAMPLE = int(os.environ.get("EXPERIMENT_MIN_SAMPLE", "100"))
# The dashboard's cash forecast is computed at most once in this many seconds (per day).
DASHBOARD_FORECAST_CACHE_SECONDS = int(os.environ.get("DASHBOARD_FORECAST_CACHE_SECONDS", "300"))
# Payment-plan suggestions on the customer page (cases/plan_suggestions.py): offered when
# the plannable balance is more than FACTOR times the median monthly payment of the last
# HISTORY_DAYS (and more than the largest payment), at least LATE_SHARE of it is predicted
# late, and the customer made at least MIN_PAYMENTS payments; at most MAX_INSTALLMENTS
# monthly installments, the first FIRST_DUE_DAYS after today.
PLAN_SUGGESTION_BALANCE_FACTOR = os.environ.get("PLAN_SUGGESTION_BALANCE_FACTOR", "2")
PLAN_SUGGESTION_LATE_SHARE = os.environ.get("PLAN_SUGGESTION_LATE_SHARE", "0.5")
PLAN_SUGGESTION_HISTORY_DAYS = int(os.environ.get("PLAN_SUGGESTION_HISTORY_DAYS", "365"))
PLAN_SUGGESTION_MIN_PAYMENTS = int(os.environ.get("PLAN_SUGGESTION_MIN_PAYMENTS", "3"))
PLAN_SUGGESTION_MAX_INSTALLMENTS = int(os.environ.get("PLAN_SUGGESTION_MAX_INSTALLMENTS", "12"))
PLAN_SUGGESTION_FIRST_DUE_DAYS = int(os.environ.get("PLAN_SUGGESTION_FIRST_DUE_DAYS", "7"))
