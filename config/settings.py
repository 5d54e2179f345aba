"""Django settings for morm, read from environment variables.

Defaults give the embedded setup that `make demo` runs: SQLite and a Celery broker
on the filesystem under ``var/``, so no external server is needed. Production sets
``DATABASE_URL`` (Postgres, psycopg 3) and ``CELERY_BROKER_URL`` (Redis).
"""

import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE

from rm_worker.training.model_dirs import packaged_model_dirs

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("MORM_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable ("1", "true", "yes" are true)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    # The key must survive restarts (sessions, tokens) but must never be committed:
    # generate one on first start and keep it under var/.
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "annotate_app",
    "rm_worker",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that it turns a login refused by django-axes into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# Connections are kept between requests (a new Postgres connection per request cost the
# trivial endpoint half its throughput) and checked before reuse, so a database restart
# costs one failed check, not an error.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{VAR_DIR / 'morm.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "600")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Server-side binding lets psycopg prepare a statement once it ran this many times on a
    # connection; Postgres then skips parsing and planning it. The queue's statements repeat on
    # every request: prepared, Postgres spent about half the CPU per next+submit (bench/RESULTS.md).
    # Django's default (client-side binding, nothing prepared) with DATABASE_PREPARE_THRESHOLD="".
    if _threshold := os.environ.get("DATABASE_PREPARE_THRESHOLD", "5"):
        DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": int(_threshold)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE takes SQLite's write lock at the start of every transaction, so
    # concurrent task leases are serialized instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 30}
    # Tests use a file, not the in-memory default: in-memory SQLite shares one cache between
    # connections, where a read that meets another thread's open write fails at once with
    # "database table is locked" instead of waiting (browser tests read metrics while a
    # training thread writes them).
    DATABASES["default"]["TEST"] = {
        "NAME": os.environ.get("MORM_SQLITE_TEST_NAME") or str(VAR_DIR / "test_morm.sqlite3")
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's four standard validators: for passwords set through forms and `changepassword`
# (create_user and set_password, as in seed_demo and tests, do not validate).
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT", VAR_DIR / "staticfiles"))
# whitenoise warns about a missing folder before the first collectstatic.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_ROOT = Path(os.environ.get("DJANGO_MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedStaticFilesStorage"
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Uploaded import files are refused above this size (bytes); 50 MB by default. A gzipped upload
# counts by its decompressed size too: reading stops as soon as it inflates past the limit.
MORM_MAX_UPLOAD_BYTES = int(os.environ.get("MORM_MAX_UPLOAD_BYTES", 50 * 1024 * 1024))
# JSON nested deeper than this (imported lines, API request bodies; the outer object is level 1)
# is refused with a 400 naming the field.
MORM_MAX_JSON_DEPTH = int(os.environ.get("MORM_MAX_JSON_DEPTH", 20))
# Django's own cap applies to non-file form fields only; files stream to disk.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "annotate_app.api.authentication.ExpiringTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Rates: MORM_API_THROTTLE_USER / _ANON (security block below).
    "DEFAULT_THROTTLE_CLASSES": ["annotate_app.api.throttles.UserThrottle", "annotate_app.api.throttles.AnonThrottle"],
    "DEFAULT_SCHEMA_CLASS": "annotate_app.api.schema.ErrorCodesAutoSchema",
    "EXCEPTION_HANDLER": "annotate_app.api.errors.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "annotate_app.api.pagination.NewestFirstCursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_PARSER_CLASSES": [
        "annotate_app.api.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "morm API",
    "DESCRIPTION": "Multi-objective preference data: projects, imports, annotation tasks.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # The docs page (/api/v1/docs/) loads Swagger UI from our own static files, none from a CDN,
    # and its start-up script from the page's own URL (SpectacularSwaggerSplitView): the CSP's
    # script-src 'self' holds. No validator badge: it would fetch from validator.swagger.io.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Routes answer with and without their trailing slash; the schema lists each once.
    "PREPROCESSING_HOOKS": ["annotate_app.api.schema.drop_slash_twins"],
    "ENUM_NAME_OVERRIDES": {
        "ImportFormatEnum": ["auto", "native", "trl", "hh", "pku"],
        "SnapshotFormatEnum": "annotate_app.models.snapshot.SnapshotFormat",
        "SnapshotStatusEnum": "annotate_app.models.snapshot.SnapshotStatus",
        "RunStatusEnum": "annotate_app.models.runs.RunStatus",
        "TaskStatusEnum": "annotate_app.models.annotation_task.TaskStatus",
    },
}

# Celery: the embedded default is kombu's filesystem transport, so `make demo` runs a
# real worker process with no broker server. Redis in production via CELERY_BROKER_URL.
CELERY_BROKER_DIR = VAR_DIR / "celery"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", f"file://{CELERY_BROKER_DIR / 'results'}")
# kombu's filesystem transport and Celery's file result backend expect their folders
# to exist; every process (web, worker, tests) may be the first to start.
for _folder in ("queue", "processed", "control", "results"):
    if CELERY_BROKER_URL.startswith("filesystem://") or CELERY_RESULT_BACKEND.startswith("file://"):
        (CELERY_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "rm_worker.train_reward_model": {"queue": "training"},
    "rm_worker.run_ppo": {"queue": "training"},
    "rm_worker.generate_pairs": {"queue": "training"},
    "rm_worker.score_comparisons": {"queue": "training"},  # loads the run's model
    "rm_worker.rank_queue": {"queue": "training"},  # loads the queue's reward model
    "rm_worker.evaluate_round": {"queue": "training"},  # loads the round's reward model
}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = int(os.environ.get("CELERY_TASK_TIME_LIMIT", 6 * 3600))
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

# Crash recovery (annotate_app/services/recovery.py). A running run or export touches its
# heartbeat every MORM_HEARTBEAT_SECONDS; Celery beat (`celery beat`, or `worker -B` in
# `make demo`) runs the recovery every MORM_RECOVER_EVERY_SECONDS, which queues again whatever
# has had no heartbeat for MORM_STALE_AFTER_SECONDS (runs resume from their last checkpoint,
# exports are rebuilt) and fails it after MORM_MAX_ATTEMPTS starts. It relies on no broker
# feature, so the filesystem transport (no redelivery) recovers like Redis.
MORM_HEARTBEAT_SECONDS = float(os.environ.get("MORM_HEARTBEAT_SECONDS", 30))
MORM_STALE_AFTER_SECONDS = float(os.environ.get("MORM_STALE_AFTER_SECONDS", 120))
MORM_RECOVER_EVERY_SECONDS = float(os.environ.get("MORM_RECOVER_EVERY_SECONDS", 30))
MORM_MAX_ATTEMPTS = int(os.environ.get("MORM_MAX_ATTEMPTS", 3))
CELERY_BEAT_SCHEDULE = {
    "recover-stale-work": {
        "task": "rm_worker.recover_stale_work",
        "schedule": MORM_RECOVER_EVERY_SECONDS,
        "options": {"expires": MORM_RECOVER_EVERY_SECONDS},  # a late one is superseded by the next
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# `GET .../metrics?since=STEP` returns at most this many points per call, whole steps only (a
# single step with more comes whole); the response's `next` asks for the rest.
MORM_METRICS_CHUNK_POINTS = int(os.environ.get("MORM_METRICS_CHUNK_POINTS", 5000))

# The statistics page computes agreement, position bias and trade-offs over the comparisons
# of this many latest submits, so its cost stops growing with the project.
MORM_STATS_SAMPLE = int(os.environ.get("MORM_STATS_SAMPLE", 5000))

# Exports with at least this many judgments in scope are built by a Celery worker
# (progress on the export page) instead of inside the request.
MORM_EXPORT_BACKGROUND_ROWS = int(os.environ.get("MORM_EXPORT_BACKGROUND_ROWS", 20000))

# "Export for training" (page and REST) builds a run bundle inside the request: it copies the reward
# model folder, at most this many bytes of it; larger models are exported with manage.py export_bundle.
MORM_BUNDLE_MAX_MODEL_BYTES = int(os.environ.get("MORM_BUNDLE_MAX_MODEL_BYTES", 2 * 1024**3))

# A weight sweep (services.policy_sweeps) queues at most this many PPO runs; it needs as many free
# slots under MORM_MAX_ACTIVE_RUNS_PER_PROJECT, or none is queued.
MORM_MAX_SWEEP_RUNS = int(os.environ.get("MORM_MAX_SWEEP_RUNS", 25))
# A project may have at most this many training runs (reward-model, PPO, generations) queued or
# running; one more is refused (REST 429, a form error, a CommandError) until one finishes. As many
# as the largest sweep: with the defaults, a sweep a researcher is allowed to ask for is queued.
MORM_MAX_ACTIVE_RUNS_PER_PROJECT = int(os.environ.get("MORM_MAX_ACTIVE_RUNS_PER_PROJECT", MORM_MAX_SWEEP_RUNS))

# Trained models and checkpoints (a volume shared by web and training workers).
MORM_ARTIFACTS_DIR = Path(os.environ.get("MORM_ARTIFACTS_DIR", VAR_DIR / "artifacts"))
# Model folders a run may use (reward-model backbone, PPO policy), os.pathsep-separated: each is
# a model folder or a folder of model folders. Runs name a model; they never give a path.
# Default: the packaged models (MiniLM-L6 encoder, SmolLM2-135M-Instruct GGUF) and var/models/.
MORM_MODEL_DIRS = (
    [Path(folder) for folder in os.environ["MORM_MODEL_DIRS"].split(os.pathsep) if folder]
    if "MORM_MODEL_DIRS" in os.environ
    else [*packaged_model_dirs().values(), VAR_DIR / "models"]
)
# The frozen mode's embedding cache (one SQLite file per project below it); empty: in memory, per run.
MORM_EMBEDDING_CACHE_DIR = os.environ.get("MORM_EMBEDDING_CACHE_DIR", "")
# Hard limit for one training task (seconds); the task gets a soft limit a minute earlier.
MORM_TRAINING_TIME_LIMIT = int(os.environ.get("MORM_TRAINING_TIME_LIMIT", 12 * 3600))

# Webhooks (annotate_app/services/webhooks.py): a delivery waits at most MORM_WEBHOOK_TIMEOUT_SECONDS
# for the receiver; a failed one is tried again with exponential backoff (5 s, 25 s, 2 min, 10 min,
# 52 min, 4 h, then every 6 h) until MORM_WEBHOOK_MAX_ATTEMPTS attempts. Webhook URLs that resolve to
# private, loopback, link-local, reserved or multicast addresses are refused (at creation and at each
# delivery) unless MORM_WEBHOOKS_ALLOW_PRIVATE=1: a receiver on the operator's own network.
MORM_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("MORM_WEBHOOK_TIMEOUT_SECONDS", 10))
MORM_WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("MORM_WEBHOOK_MAX_ATTEMPTS", 8))
MORM_WEBHOOKS_ALLOW_PRIVATE = env_bool("MORM_WEBHOOKS_ALLOW_PRIVATE", False)


# ---------------------------------------------------------------------------------------
# Security: login lockout, API rate limits, token lifetime, TLS switches, CSP.
# ---------------------------------------------------------------------------------------

# Login lockout (django-axes, counted in the database so every web process sees the same
# numbers): after MORM_LOGIN_FAILURE_LIMIT failed logins for one username, or from one
# address, the login page and auth/token/ answer 429 for MORM_LOGIN_COOLOFF_MINUTES. Behind a
# proxy, set MORM_PROXY_COUNT so the client address is read from X-Forwarded-For.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("MORM_LOGIN_FAILURE_LIMIT", 10))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("MORM_LOGIN_COOLOFF_MINUTES", 15)))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Attempts during a lockout do not prolong it, so nobody can keep someone else locked out
# for longer than one cool-off.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False  # no banner on every process start
# No row and no log line per successful login; failed ones are counted, lockouts logged.
AXES_DISABLE_ACCESS_LOG = True
LOGGING.setdefault("loggers", {})["axes"] = {"level": "WARNING"}
AXES_CLIENT_IP_CALLABLE = "annotate_app.api.throttles.client_address"
MORM_PROXY_COUNT = int(os.environ.get("MORM_PROXY_COUNT", 0))

# API rate limits (DRF throttles; empty turns one off), per signed-in user and per address
# without credentials. Counted in Django's cache: DJANGO_CACHE_URL=redis://... shares the
# counts between processes (the default cache is per process).
MORM_API_THROTTLE_USER = os.environ.get("MORM_API_THROTTLE_USER", "2000/minute")
MORM_API_THROTTLE_ANON = os.environ.get("MORM_API_THROTTLE_ANON", "300/minute")
if _cache_url := os.environ.get("DJANGO_CACHE_URL"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}}

# API tokens stop working this many days after they were made (0: never); the login call
# (auth/token/) hands out a new one, and the API token page rotates it at any time.
MORM_TOKEN_TTL_DAYS = float(os.environ.get("MORM_TOKEN_TTL_DAYS", 30))

# DJANGO_HTTPS=1 when clients reach morm over TLS, through a proxy that sets
# X-Forwarded-Proto (and strips any the client sent): secure cookies, HSTS, redirect to https.
if env_bool("DJANGO_HTTPS", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_HSTS_SECONDS", 365 * 24 * 3600))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", True)

# Content-Security-Policy on every response (django-csp): scripts only from our own static
# files (no inline script, no eval). Styles allow inline attributes because Django's admin
# and DRF's browsable API use them; our own pages have none.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
