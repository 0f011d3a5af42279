"""Carely PEP settings: one module, read from the environment with strict helpers.

CARELY_MODE unset or "embedded" gives the self-contained default (SQLite, local files, console
messages, a filesystem Celery broker, all under var/). CARELY_MODE=production requires every
variable a real deployment needs and refuses to start without it.
"""

from __future__ import annotations

import re
import secrets
from datetime import time as dt_time
from datetime import timedelta
from pathlib import Path

import dj_database_url
from kombu import Queue

from carely.lib.env import ConfigError, Env
from carely.lib.keyed_hash import parse_blind_index_key
from carely.privacy.crypto import embedded_key_file, parse_field_keys

env = Env()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.text("CARELY_VAR_DIR") or BASE_DIR / "var")

CARELY_MODE = env.choice("CARELY_MODE", ("embedded", "production"), default="embedded")
PRODUCTION = CARELY_MODE == "production"

# The EEA regions we accept for storage and providers (SEC-7); a system check warns on others.
EEA_AWS_REGIONS = (
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
)


def _embedded_secret(name: str) -> str:
    """A random secret generated once into var/ so the embedded default needs no setup."""
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


# --- core -----------------------------------------------------------------------------------------
if PRODUCTION:
    SECRET_KEY = env.required("SECRET_KEY", why="required when CARELY_MODE=production")
    if len(SECRET_KEY) < 50:
        raise ConfigError("SECRET_KEY must be at least 50 characters long")
    ALLOWED_HOSTS = env.csv("ALLOWED_HOSTS", required=True)
else:
    SECRET_KEY = env.text("SECRET_KEY") or _embedded_secret("secret_key")
    ALLOWED_HOSTS = env.csv("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])

DEBUG = env.flag("CARELY_DEBUG", default=False)
if PRODUCTION and DEBUG:
    raise ConfigError("CARELY_DEBUG must be off when CARELY_MODE=production")

# Separate key for keyed hashes (API key digests, blind indexes): rotating SECRET_KEY must not
# invalidate every API key.
HASH_KEY = env.text("CARELY_HASH_KEY") or (
    env.required("CARELY_HASH_KEY", why="required when CARELY_MODE=production")
    if PRODUCTION
    else _embedded_secret("hash_key")
)

INSTALLED_APPS = [
    "carely.orgs.apps.PlatformAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "axes",
    "carely.lib",
    "carely.orgs",
    "carely.audit",
    "carely.api",
    "carely.privacy",
    "carely.web",
    "contacts",
    "files",
    "consent",
    "messaging",
    "campaigns",
    "dsr",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "carely.web.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    # After LocaleMiddleware so the language kept in the session wins over Accept-Language; no
    # language cookie is ever set (SEC-9).
    "carely.web.middleware.SessionLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before CsrfViewMiddleware, whose token check reads a form's body: an upload larger than
    # its view's limit is refused from Content-Length alone (carely.web.uploads).
    "carely.web.uploads.UploadLimitMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Binds the request id and the signed-in person for audit and access-log rows.
    "carely.audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After MessageMiddleware so the "signed out after inactivity" message survives the logout.
    "carely.web.middleware.IdleTimeoutMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "carely.orgs.middleware.OrganisationMiddleware",
    "carely.web.middleware.MfaRequiredMiddleware",
    "carely.orgs.middleware.SuspensionMiddleware",
    # Axes last, as its documentation asks, so it sees the final response of a login attempt.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "carely.urls"
WSGI_APPLICATION = "carely.wsgi.application"
ASGI_APPLICATION = "carely.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # Listed first so carely.web's overrides of allauth and drf-spectacular templates win
        # without reordering INSTALLED_APPS.
        "DIRS": [BASE_DIR / "carely" / "web" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "carely.web.context_processors.shell",
            ],
        },
    }
]

# --- database ---------------------------------------------------------------------------------
DATABASE_URL = env.url("DATABASE_URL", ("postgres", "postgresql"), required=PRODUCTION)
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "carely.sqlite3"),
            "OPTIONS": {
                # WAL lets the web server read while the worker writes; IMMEDIATE takes the write
                # lock at BEGIN so concurrent writers queue instead of failing mid-transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- cache, broker ----------------------------------------------------------------------------
REDIS_URL = env.url("REDIS_URL", ("redis", "rediss"), required=PRODUCTION)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "carely",
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 3600}
else:
    # A file cache is shared by the web server and the worker processes, so per-key rate limits
    # hold across processes even without Redis.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    _broker = VAR_DIR / "celery"
    for _sub in ("queue", "processed", "control", "results"):
        (_broker / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker / "queue"),
        "data_folder_out": str(_broker / "queue"),
        "processed_folder": str(_broker / "processed"),
        "control_folder": str(_broker / "control"),
        "store_processed": False,
    }
    CELERY_RESULT_BACKEND = f"file://{_broker / 'results'}"

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TIMEZONE = "Europe/Ljubljana"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- storage ----------------------------------------------------------------------------------
S3_BUCKET = env.text("S3_BUCKET", required=PRODUCTION)
S3_REGION = env.text("S3_REGION", required=PRODUCTION or bool(S3_BUCKET))
S3_ENDPOINT_URL = env.url("S3_ENDPOINT_URL", ("http", "https"))
if S3_BUCKET:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "region_name": S3_REGION,
            "endpoint_url": S3_ENDPOINT_URL,
            "default_acl": "private",
            "querystring_auth": True,
            "querystring_expire": 300,
            "file_overwrite": False,
            "object_parameters": {"ServerSideEncryption": "AES256"},
        },
    }
else:
    _default_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "media"), "base_url": "/media-not-public/"},
    }
# Contact files (CNT-5): largest upload accepted; downloads on S3 are 60-second presigned URLs
# (files.serving), so querystring_auth must stay on and the ACL private.
CONTACT_FILE_MAX_BYTES = env.number("CONTACT_FILE_MAX_BYTES", 25 * 1024 * 1024, minimum=1)
# CSV imports of at least this many bytes (about 13,000 rows a MiB) read and validate in a forked
# child process while the worker writes (ADR 0008); smaller ones are not worth the fork.
# Campaigns of at least this many contacts are materialised with a forked reader process that
# decides and renders the next batch while the worker writes (campaigns.materialise).
CAMPAIGN_MATERIALISE_FORK_MIN_CONTACTS = env.number(
    "CAMPAIGN_MATERIALISE_FORK_MIN_CONTACTS", 20000, minimum=0
)
CONTACT_IMPORT_PARALLEL_MIN_BYTES = env.number(
    "CONTACT_IMPORT_PARALLEL_MIN_BYTES", 1024 * 1024, minimum=0
)
STORAGES = {
    "default": _default_storage,
    "staticfiles": {
        "BACKEND": env.text(
            "CARELY_STATICFILES_BACKEND",
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage",
        )
    },
}
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
WHITENOISE_USE_FINDERS = not PRODUCTION
if not PRODUCTION:
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns when it is missing

# --- messaging providers (used by the messaging issues; validated here so start-up fails early) ---
MESSAGING_PROVIDER = env.choice(
    "MESSAGING_PROVIDER", ("console", "infobip"), default="infobip" if PRODUCTION else "console"
)
INFOBIP_BASE_URL = env.url(
    "INFOBIP_BASE_URL", ("https", "http"), required=MESSAGING_PROVIDER == "infobip"
)
INFOBIP_API_KEY = env.text("INFOBIP_API_KEY", required=MESSAGING_PROVIDER == "infobip")
INFOBIP_REGION = env.text("INFOBIP_REGION", "eu")
EMAIL_PROVIDER = env.choice(
    "EMAIL_PROVIDER", ("console", "infobip", "ses"), default="infobip" if PRODUCTION else "console"
)
if EMAIL_PROVIDER == "infobip" and not INFOBIP_API_KEY:
    raise ConfigError("INFOBIP_API_KEY must be set when EMAIL_PROVIDER=infobip")
SES_REGION = env.text("SES_REGION", required=EMAIL_PROVIDER == "ses")
# The adapter per channel (messaging.providers), chosen like EMAIL_BACKEND: a dotted path.
_SMS_PROVIDER = {
    "console": "messaging.providers.console.ConsoleProvider",
    "infobip": "messaging.providers.infobip.InfobipSmsProvider",
}
_EMAIL_PROVIDER = {
    "console": "messaging.providers.console.ConsoleProvider",
    "infobip": "messaging.providers.infobip.InfobipEmailProvider",
    "ses": "messaging.providers.ses.SesEmailProvider",
}
_WHATSAPP_PROVIDER = {
    "console": "messaging.providers.console.ConsoleProvider",
    "infobip": "messaging.providers.infobip.InfobipWhatsAppProvider",
}
MESSAGING_PROVIDERS = {
    "sms": _SMS_PROVIDER[MESSAGING_PROVIDER],
    "email": _EMAIL_PROVIDER[EMAIL_PROVIDER],
    "whatsapp": _WHATSAPP_PROVIDER[MESSAGING_PROVIDER],
}
# Platform sender ids; an organisation's ProviderAccount may override each.
MESSAGING_SMS_SENDER = env.text("MESSAGING_SMS_SENDER", "Carely")
MESSAGING_WHATSAPP_SENDER = env.text("MESSAGING_WHATSAPP_SENDER", "")
SES_ENDPOINT_URL = env.url("SES_ENDPOINT_URL", ("http", "https"))
SES_CONFIGURATION_SET = env.text("SES_CONFIGURATION_SET", "")
# Dispatch: rows claimed per round, messages per provider request (Infobip publishes no cap;
# INTEGRATIONS.md 1.4), how long a worker owns a claimed row, and the back-off on 429/5xx.
MESSAGING_CLAIM_BATCH = env.number("MESSAGING_CLAIM_BATCH", 1000, minimum=1)
MESSAGING_PROVIDER_BATCH = env.number("MESSAGING_PROVIDER_BATCH", 500, minimum=1)
MESSAGING_LEASE_SECONDS = env.number("MESSAGING_LEASE_SECONDS", 120, minimum=5)
MESSAGING_MAX_ATTEMPTS = env.number("MESSAGING_MAX_ATTEMPTS", 10, minimum=1)
MESSAGING_BACKOFF_BASE_SECONDS = env.number("MESSAGING_BACKOFF_BASE_SECONDS", 2, minimum=0)
MESSAGING_BACKOFF_MAX_SECONDS = env.number("MESSAGING_BACKOFF_MAX_SECONDS", 900, minimum=1)
MESSAGING_HTTP_TIMEOUT_SECONDS = env.number("MESSAGING_HTTP_TIMEOUT_SECONDS", 30, minimum=1)
# Provider requests per second per provider account, shared by every worker (Redis when
# REDIS_URL is set, per process otherwise).
MESSAGING_RATE_LIMIT_PER_SECOND = env.number("MESSAGING_RATE_LIMIT_PER_SECOND", 50, minimum=1)
# A row left in "sending" with the provider called is re-queued only once the provider has
# said, this long after the call, that it never got it (its logs lag a little).
MESSAGING_RECONCILE_GRACE_SECONDS = env.number("MESSAGING_RECONCILE_GRACE_SECONDS", 600, minimum=0)
MESSAGING_TRANSACTIONAL_QUEUE = "messaging-transactional"
MESSAGING_BULK_QUEUE = "messaging-bulk"
# Declared so that a worker started without -Q consumes all three; Procfile.embedded also runs a
# worker on the transactional queue alone, so a reminder never waits behind a campaign's bulk.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (
    Queue("celery"),
    Queue(MESSAGING_BULK_QUEUE),
    Queue(MESSAGING_TRANSACTIONAL_QUEUE),
)


# Quiet hours (MSG-4) in the organisation's time zone unless its ProviderAccount says otherwise.
def _clock(name: str, default: str) -> dt_time:
    value = env.text(name, default) or default
    try:
        return dt_time.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{name} must be a time of day like 20:00, got {value!r}") from None


MESSAGING_QUIET_HOURS = (
    _clock("MESSAGING_QUIET_HOURS_START", "20:00"),
    _clock("MESSAGING_QUIET_HOURS_END", "08:00"),
)
# --- provider webhooks (MSG-7, CON-2; messaging.webhooks) ---
# Infobip's subscription profile sends either Basic auth (any user name, this password) or this
# static header; an organisation's ProviderAccount.webhook_secret overrides the platform's.
INFOBIP_WEBHOOK_SECRET = env.text("INFOBIP_WEBHOOK_SECRET", "")
MESSAGING_WEBHOOK_SECRET_HEADER = "X-Carely-Webhook-Secret"
# Processed receipts (raw bodies, encrypted) are deleted after this many days.
MESSAGING_WEBHOOK_RECEIPT_KEEP_DAYS = env.number(
    "MESSAGING_WEBHOOK_RECEIPT_KEEP_DAYS", 7, minimum=1
)
# Replies that withdraw consent (INTEGRATIONS.md 5), matched without case, accents or spaces;
# "<anything> STOP" counts too. Organisations may add their own (messaging.StopKeywordSet). Not
# "cancel" or "end": a patient answering a reminder with CANCEL means the appointment.
MESSAGING_STOP_KEYWORDS = ("stop", "unsubscribe", "odjava", "odjavi", "stop all")
# SES bounces and complaints arrive by SNS: only these topics are accepted (comma-separated ARNs).
SES_SNS_TOPIC_ARNS = tuple(env.csv("SES_SNS_TOPIC_ARNS"))
if EMAIL_PROVIDER == "ses" and PRODUCTION and not SES_SNS_TOPIC_ARNS:
    raise ConfigError(
        "SES_SNS_TOPIC_ARNS must list the SNS topic(s) of the SES configuration set when "
        "EMAIL_PROVIDER=ses, or bounces and complaints are refused"
    )
# Where an SNS signing certificate (and a SubscribeURL) may come from: HTTPS on AWS's own SNS
# host only. Deliberately not read from the environment; tests point it at a loopback server.
SNS_CERT_URL_PATTERN = r"https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"
AI_DRAFTING_ENABLED = env.flag("AI_DRAFTING_ENABLED", default=False)
BEDROCK_REGION = env.text("BEDROCK_REGION", required=AI_DRAFTING_ENABLED)
BEDROCK_MODEL_ID = env.text("BEDROCK_MODEL_ID", required=AI_DRAFTING_ENABLED)
DEFAULT_FROM_EMAIL = env.text("DEFAULT_FROM_EMAIL", "Carely PEP <no-reply@carely.localhost>")
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if env.text("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = env.text("EMAIL_HOST", "localhost")
EMAIL_PORT = env.number("EMAIL_PORT", 587)
EMAIL_USE_TLS = env.flag("EMAIL_USE_TLS", default=True)
EMAIL_HOST_USER = env.text("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env.text("EMAIL_HOST_PASSWORD", "")

# --- public pages ------------------------------------------------------------------------------
# Links that leave the app (unsubscribe links and List-Unsubscribe headers in messages) need the
# public origin, and a worker building a message has no request to take the host from.
# Production defaults to https://<first allowed host>, as CSRF_TRUSTED_ORIGINS does, and refuses
# to start without the variable when that host is a wildcard; only https is accepted there.
_first_host = ALLOWED_HOSTS[0] if ALLOWED_HOSTS else ""
_public_default = (
    f"https://{_first_host}"
    if PRODUCTION and _first_host and not _first_host.startswith((".", "*"))
    else None
)
CARELY_PUBLIC_BASE_URL = (
    env.url(
        "CARELY_PUBLIC_BASE_URL",
        ("https",) if PRODUCTION else ("http", "https"),
        required=PRODUCTION and _public_default is None,
    )
    or _public_default
    or f"http://127.0.0.1:{env.number('CARELY_PORT', 8000, minimum=1)}"
).rstrip("/")

# The mailto half of List-Unsubscribe (RFC 2369/8058) is optional: only an address whose mail
# someone acts on may be offered, so without a domain the header carries the HTTPS URL alone.
CARELY_UNSUBSCRIBE_MAILTO_DOMAIN = (
    (env.text("CARELY_UNSUBSCRIBE_MAILTO_DOMAIN", "") or "").strip().lower()
)
if CARELY_UNSUBSCRIBE_MAILTO_DOMAIN and not re.fullmatch(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", CARELY_UNSUBSCRIBE_MAILTO_DOMAIN
):
    raise ConfigError(
        "CARELY_UNSUBSCRIBE_MAILTO_DOMAIN must be a bare domain such as mail.example.eu."
    )

# --- authentication ---------------------------------------------------------------------------
AUTH_USER_MODEL = "orgs.User"
AUTHENTICATION_BACKENDS = [
    # Axes first: it refuses a locked-out login before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "web:dashboard"
LOGOUT_REDIRECT_URL = "account_login"

ACCOUNT_ADAPTER = "carely.web.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_PREVENT_ENUMERATION = True
# django-axes owns lockout (SEC-1). allauth's own "login_failed" limit (5 per 5 minutes per
# e-mail) would answer "too many attempts" on the same attempt axes locks on, with a different
# message and no time left, so it is switched off; the per-IP "login" limit stays.
ACCOUNT_RATE_LIMITS = {"login_failed": None}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Carely PEP"
MFA_RECOVERY_CODE_COUNT = 10

AXES_FAILURE_LIMIT = env.number("CARELY_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env.number("CARELY_LOCKOUT_MINUTES", 15, minimum=1))
# Lock an account after repeated failures, wherever they come from. Not the client address on its
# own: a clinic's staff share one NAT address, and one person's typos would lock out everyone.
# Spraying many accounts from one address meets allauth's per-address "login" rate limit instead.
AXES_LOCKOUT_PARAMETERS = ["username"]
# axes.W006 wants the address in the parameters because lockouts keyed on a user agent or cookie
# can be dodged by changing them; a lockout keyed on the account cannot, whatever the client sends.
SILENCED_SYSTEM_CHECKS = ["axes.W006"]
AXES_USERNAME_FORM_FIELD = "login"
# allauth calls authenticate(email=..., password=...), so the "login" form field is not among the
# credentials axes sees; this callable reads the e-mail from either place, lower-cased.
AXES_USERNAME_CALLABLE = "carely.web.adapters.axes_username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "carely.web.views.lockout_response"
# Attempts while locked do not restart the cool-off: the lockout page promises a time, and keeping
# that promise matters more than punishing a person who retries too early.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_VERBOSE = False

SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_AGE = 12 * 3600  # absolute cap; the idle timeout below usually ends a session first
SESSION_IDLE_TIMEOUT = timedelta(minutes=env.number("CARELY_SESSION_IDLE_MINUTES", 30, minimum=1))
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
# Strictly necessary cookies only (SEC-9): sessionid and csrftoken. Language lives in the session.
CSRF_FAILURE_VIEW = "carely.web.views.csrf_failure"

# --- i18n -------------------------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("sl", "Slovenščina")]
LOCALE_PATHS = [BASE_DIR / "carely" / "locale"]
USE_I18N = True
TIME_ZONE = "Europe/Ljubljana"
USE_TZ = True

# --- API --------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["carely.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["carely.api.permissions.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["carely.api.throttling.ApiKeyRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "carely.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "carely.api.errors.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}
API_DEFAULT_RATE_PER_MINUTE = env.number("CARELY_API_RATE_PER_MINUTE", 600, minimum=1)
SPECTACULAR_SETTINGS = {
    "TITLE": "Carely PEP API",
    "DESCRIPTION": "Contacts, consent, messaging and data-subject requests for one organisation. "
    "Authenticate with `Authorization: Bearer <key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Several resources have a "status" with their own values; name each set.
    "ENUM_NAME_OVERRIDES": {
        "ConsentStatusEnum": "consent.models.Status",
        "MessageChannelEnum": "messaging.models.Channel",
        "MessageKindEnum": "messaging.models.Kind",
        "MessageStatusEnum": "messaging.models.Status",
        # Named because the messages' kind made "kind" ambiguous.
        "FileKindEnum": "files.models.FileKind",
    },
}

# --- security headers -------------------------------------------------------------------------
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
CSRF_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.flag("CARELY_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.number("CARELY_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_TRUSTED_ORIGINS = env.csv(
        "CSRF_TRUSTED_ORIGINS", [f"https://{h.lstrip('.')}" for h in ALLOWED_HOSTS if h != "*"]
    )
    if env.flag("CARELY_BEHIND_PROXY", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- logging ----------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.text("CARELY_LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}, "werkzeug": {"level": "WARNING"}},
}

# --- personal data at rest ------------------------------------------------------------------
# Field encryption and blind indexes (SEC-8, ADR 4) have keys of their own, so rotating SECRET_KEY
# or HASH_KEY never touches stored data. CARELY_FIELD_KEYS: "<id>:<base64 of 32 bytes>" pairs,
# comma-separated, newest first (the newest encrypts, all decrypt). Both are checked at start-up.
FIELD_KEYS = env.text("CARELY_FIELD_KEYS") or (
    env.required("CARELY_FIELD_KEYS", why="required when CARELY_MODE=production")
    if PRODUCTION
    else embedded_key_file(VAR_DIR / "field_keys", make="field_keys")
)
parse_field_keys(FIELD_KEYS)
BLIND_INDEX_KEY = env.text("CARELY_BLIND_INDEX_KEY") or (
    env.required("CARELY_BLIND_INDEX_KEY", why="required when CARELY_MODE=production")
    if PRODUCTION
    else embedded_key_file(VAR_DIR / "blind_index_key", make="blind_index_key")
)
parse_blind_index_key(BLIND_INDEX_KEY)
