"""Settings, assembled: what DJANGO_SETTINGS_MODULE names. The core (hosts, apps, database, storage, DICOM, the
model) is here; each other concern is a module of xrayweb.conf. Values come from the environment through
xrayweb.env, and bad values fail loudly at start-up.

Embedded defaults work on a laptop (SQLite and a media folder under DATA_DIR); production switches
to PostgreSQL, external Redis and S3-compatible storage through environment variables alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from worker.ml.spec import DEFAULT_MODEL_DIR
from xrayweb.conf.api import *  # noqa: F403
from xrayweb.conf.logs import *  # noqa: F403
from xrayweb.conf.security import *  # noqa: F403
from xrayweb.conf.tasks import *  # noqa: F403
from xrayweb.conf.uploads import *  # noqa: F403
from xrayweb.env import env_bool, env_int, env_str, env_text, env_time_zone, env_url
from xrayweb.paths import BASE_DIR, DEFAULT_AE_TITLE, DEFAULT_DICOM_PORT, data_dir

DATA_DIR = data_dir(os.environ)
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_text("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and not env_bool("DJANGO_INSECURE_DEV_KEY", False):
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is not set. Set it (production), or use `make run`, which generates one."
        )
    SECRET_KEY = "insecure-development-key-do-not-use-in-production"  # noqa: S105
ALLOWED_HOSTS = [
    h.strip() for h in env_text("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()
]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in env_text("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "diagnosis",
]

MIDDLEWARE = [
    "diagnosis.limits.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # After sessions, before CommonMiddleware (Django's order): the browser's language (Accept-Language, the
    # language cookie) for every page; diagnosis.locale_middleware below overrides it for a signed-in member.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # A member's language (theirs, else the clinic's) and the clinic's time zone: needs the user, so after auth.
    "diagnosis.locale_middleware.ClinicLocaleMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: turns a lockout raised during login into its response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "xrayweb.urls"
WSGI_APPLICATION = "xrayweb.wsgi.application"
ASGI_APPLICATION = "xrayweb.asgi.application"

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
                "diagnosis.context_processors.membership",
            ],
        },
    },
]

DATABASE_URL = env_url("DATABASE_URL", f"sqlite:///{DATA_DIR / 'db.sqlite3'}", ("sqlite", "postgres", "postgresql"))
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The web server and the worker write concurrently: wait for the lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;",
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # A file, not :memory:, so that a real worker process can share the test database (it is handed the path);
    # one per test run, so that two runs in one checkout at once do not write one file ("disk I/O error").
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / f"test-db-{os.getpid()}.sqlite3")}


# English and Vietnamese; who sees which: the member's choice, else the clinic's, else the browser's
# (diagnosis.locale_middleware). TIME_ZONE (TZ_NAME) is the default of each clinic's own zone (Clinic.time_zone).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("vi", "Tiếng Việt")]  # each in its own language: the switcher shows them so
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_time_zone("TZ_NAME", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_ROOT = Path(env_text("MEDIA_ROOT") or DATA_DIR / "media")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"  # the one declaration (apps do not repeat it)

S3_BUCKET = env_text("S3_BUCKET", "")
STORAGES: dict[str, dict[str, object]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": MEDIA_ROOT}},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_url("S3_ENDPOINT_URL", "", ("http", "https")) or None,
            "region_name": env_text("S3_REGION") or None,
            "access_key": env_text("S3_ACCESS_KEY_ID") or None,
            "secret_key": env_text("S3_SECRET_ACCESS_KEY") or None,
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
# Threads that read a batch's images from storage and write its results' files (diagnosis.result_files.storage_map).
# Object storage answers each call in tens of milliseconds: a GPU batch of 128 read and written one file at a time
# would wait seconds for it. On a local disk one thread is right (the calls take microseconds).
STORAGE_THREADS = env_int("STORAGE_THREADS", 16 if S3_BUCKET else 1, minimum=1, maximum=64)
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    WHITENOISE_USE_FINDERS = True

# Invitations go by SMTP when EMAIL_HOST is set; otherwise to the log (the admin also sees the link on screen).
EMAIL_HOST = env_text("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 587, minimum=1)
EMAIL_HOST_USER = env_text("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_text("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
# Without SMTP a message is printed to the log only in development (DJANGO_DEBUG=1): a set-password link in a
# production log is an account takeover waiting to happen. The admin sees each invitation link on screen.
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.dummy.EmailBackend"
)
# Self-service password reset by e-mail only when e-mail can be sent; otherwise a clinic admin re-issues a link.
PASSWORD_RESET_BY_EMAIL = bool(EMAIL_HOST)
DEFAULT_FROM_EMAIL = env_text("DEFAULT_FROM_EMAIL") or "xray-portal@localhost"


# DICOM: the stored copy is de-identified unless DICOM_KEEP_IDENTIFIERS; the C-STORE listener's AE title
# and port (`manage.py dicom_listener`; 0: a free port) and how many associations it takes at once; how long a
# results send may take.
DICOM_KEEP_IDENTIFIERS = env_bool("DICOM_KEEP_IDENTIFIERS", False)
DICOM_AE_TITLE = env_str(
    "DICOM_AE_TITLE", DEFAULT_AE_TITLE, re.compile(r"[ -~]{1,16}"), "an AE title (1-16 ASCII characters)"
)
DICOM_PORT = env_int("DICOM_PORT", DEFAULT_DICOM_PORT, minimum=0, maximum=65535)
DICOM_SEND_TIMEOUT = env_int("DICOM_SEND_TIMEOUT", 30, minimum=1)
# Associations the listener takes at once (pynetdicom's own default, 10, refused a PACS sending 20 in parallel).
DICOM_MAX_ASSOCIATIONS = env_int("DICOM_MAX_ASSOCIATIONS", 40, minimum=1, maximum=1000)

# Model shipped with the worker (a folder holding card.json); the worker verifies its sha256.
MODEL_DIR = Path(env_text("MODEL_DIR") or DEFAULT_MODEL_DIR)
if not (MODEL_DIR / "card.json").is_file():
    raise ImproperlyConfigured(f"MODEL_DIR={str(MODEL_DIR)!r} holds no card.json (the model card)")
# Going live at a site: the share of each call (NORMAL and PNEUMONIA apart) drawn at random into a clinic's
# verification sample when its result is recorded, unless the clinic's site settings say otherwise.
VERIFICATION_SAMPLE_PERCENT = env_int("VERIFICATION_SAMPLE_PERCENT", 10, minimum=0, maximum=100)
VERIFICATION_SAMPLE_RATE = VERIFICATION_SAMPLE_PERCENT / 100
