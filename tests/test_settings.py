import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_URL", "MAX_"))}
    return subprocess.run(
        [sys.executable, "-c", "import xrayweb.settings as s; print(s.DATABASES['default']['ENGINE'], s.DEBUG)"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_missing_secret_key_fails_loudly_in_production() -> None:
    result = _load_settings()
    assert result.returncode != 0 and "DJANGO_SECRET_KEY is not set" in result.stderr


def test_bad_values_fail_loudly() -> None:
    assert "is not a boolean" in _load_settings(DJANGO_SECRET_KEY="k", DJANGO_DEBUG="maybe").stderr
    assert "is not an integer" in _load_settings(DJANGO_SECRET_KEY="k", MAX_UPLOAD_BYTES="lots").stderr


def test_database_url_switches_the_database() -> None:
    result = _load_settings(DJANGO_SECRET_KEY="k", DATABASE_URL="postgres://u@db:5432/x")
    assert result.stdout.split() == ["django.db.backends.postgresql", "False"]
    assert _load_settings(DJANGO_SECRET_KEY="k").stdout.split()[0] == "django.db.backends.sqlite3"


def _probe(**env: str) -> list[str]:
    """The e-mail backend's module and the session length under `env`."""
    code = "import xrayweb.settings as s; print(s.EMAIL_BACKEND.rsplit('.', 2)[1], s.SESSION_COOKIE_AGE)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("EMAIL_", "SESSION_"))}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def test_email_host_switches_invitations_to_smtp() -> None:
    # Without SMTP, production discards mail (a set-password link must not reach a log); development prints it.
    assert _probe(DJANGO_SECRET_KEY="k") == ["dummy", "43200"]
    assert _probe(DJANGO_SECRET_KEY="k", DJANGO_DEBUG="1") == ["console", "43200"]
    assert _probe(DJANGO_SECRET_KEY="k", EMAIL_HOST="smtp.example.org", SESSION_SECONDS="600") == ["smtp", "600"]


def test_every_new_check_names_its_variable() -> None:
    assert (
        "TZ_NAME='Mars/Olympus' is not an IANA time zone"
        in _load_settings(DJANGO_SECRET_KEY="k", TZ_NAME="Mars/Olympus").stderr
    )
    assert "LOG_LEVEL='LOUD'" in _load_settings(DJANGO_SECRET_KEY="k", LOG_LEVEL="LOUD").stderr
    assert "API_THROTTLE_RATE='fast'" in _load_settings(DJANGO_SECRET_KEY="k", API_THROTTLE_RATE="fast").stderr
    assert "REDIS_URL='localhost:6379'" in _load_settings(DJANGO_SECRET_KEY="k", REDIS_URL="localhost:6379").stderr
    assert "MODEL_DIR='/nowhere'" in _load_settings(DJANGO_SECRET_KEY="k", MODEL_DIR="/nowhere").stderr
    assert _load_settings(DJANGO_SECRET_KEY="k", TZ_NAME="Europe/Berlin", API_THROTTLE_RATE="5/hour").returncode == 0


def variables_read(source: str) -> set[str]:
    """Every environment variable a module reads: os.environ.get("X") and the env_*("X", ...) helpers."""
    return set(re.findall(r'(?:os\.environ\.get|env_\w+)\(\s*"([A-Z0-9_]+)"', source))


def settings_source() -> str:
    """The source of settings and of the modules it assembles (xrayweb.conf)."""
    paths = [ROOT / "xrayweb" / "settings.py", *sorted((ROOT / "xrayweb" / "conf").glob("*.py"))]
    return "\n".join(path.read_text() for path in paths)


def readme_table() -> set[str]:
    """The variables README's settings table names (its first column)."""
    return {
        name
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("| `")
        for name in re.findall(r"`([A-Z0-9_]+)`", line.split("|")[1])
    }


def test_every_variable_settings_and_the_launcher_read_is_in_the_readme_table() -> None:
    table = readme_table()
    read = variables_read(settings_source())
    read |= variables_read((ROOT / "xrayweb" / "launch.py").read_text()) | {"XRAY_DATA_DIR"}  # paths.data_dir
    assert {"TZ_NAME", "LOG_LEVEL", "API_THROTTLE_RATE", "DJANGO_INSECURE_DEV_KEY", "DEMO_PASSWORD"} <= read
    assert read - table == set()


def test_batch_settings_are_validated() -> None:
    assert "must be >= 1" in _load_settings(DJANGO_SECRET_KEY="k", INFERENCE_BATCH_SIZE="0").stderr
    assert (
        "INFERENCE_BATCH_SIZE=513 must be <= 512"
        in _load_settings(DJANGO_SECRET_KEY="k", INFERENCE_BATCH_SIZE="513").stderr
    )
    assert (
        "INFERENCE_BATCH_WAIT_MS=6000 must be <= 5000"
        in _load_settings(DJANGO_SECRET_KEY="k", INFERENCE_BATCH_WAIT_MS="6000").stderr
    )
    assert "INFERENCE_THREADS=65 must be <= 64" in _load_settings(DJANGO_SECRET_KEY="k", INFERENCE_THREADS="65").stderr
    assert "must be >= 1" in _load_settings(DJANGO_SECRET_KEY="k", INFERENCE_THREADS="0").stderr
    assert _load_settings(DJANGO_SECRET_KEY="k", INFERENCE_BATCH_SIZE="1", INFERENCE_BATCH_WAIT_MS="0").returncode == 0
    assert _load_settings(DJANGO_SECRET_KEY="k", INFERENCE_THREADS="12").returncode == 0
    assert "STORAGE_THREADS=65 must be <= 64" in _load_settings(DJANGO_SECRET_KEY="k", STORAGE_THREADS="65").stderr
    assert "must be >= 1" in _load_settings(DJANGO_SECRET_KEY="k", STORAGE_THREADS="0").stderr
    assert (
        "INFERENCE_DRAIN_SECONDS=61 must be <= 60"
        in _load_settings(DJANGO_SECRET_KEY="k", INFERENCE_DRAIN_SECONDS="61").stderr
    )
    assert "must be >= 0" in _load_settings(DJANGO_SECRET_KEY="k", INFERENCE_DRAIN_SECONDS="-1").stderr
    assert _load_settings(DJANGO_SECRET_KEY="k", INFERENCE_DRAIN_SECONDS="0").returncode == 0


def _time_limits(**env: str) -> list[int]:
    """The inference task's time limit and RUNNING_STALE_SECONDS under `env`."""
    code = "import xrayweb.settings as s; print(s.INFERENCE_TASK_TIME_LIMIT, s.RUNNING_STALE_SECONDS)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INFERENCE_", "RUNNING_"))}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env={**clean, "DJANGO_SECRET_KEY": "k", **env},
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [int(v) for v in result.stdout.split()]


def test_the_inference_time_limit_grows_with_the_batch_and_the_sweeper_waits_past_it() -> None:
    assert _time_limits(INFERENCE_BATCH_SIZE="1") == [120, 180]  # the per-job path: one study's limit
    assert _time_limits() == [120 + 3 * 31 + 10, 120 + 3 * 31 + 10 + 60]  # and the drain time (default 10 s)
    assert _time_limits(INFERENCE_BATCH_SIZE="512", INFERENCE_TIME_LIMIT="60", INFERENCE_DRAIN_SECONDS="0") == [
        60 + 3 * 511,
        60 + 3 * 511 + 60,
    ]
    assert _time_limits(RUNNING_STALE_SECONDS="900") == [223, 900]


def test_the_settings_modules_read_the_environment_through_the_helpers() -> None:
    """xrayweb.env is where a variable is read and checked; settings itself reads os.environ for the data folder
    only (paths.data_dir, shared with the launcher)."""
    for path in (ROOT / "xrayweb" / "conf").glob("*.py"):
        assert "os.environ" not in path.read_text(), path
    assert re.findall(r"os\.environ\S*", (ROOT / "xrayweb" / "settings.py").read_text()) == ["os.environ)"]


def _storage(**env: str) -> dict[str, object]:
    """The default storage Django builds under `env` (the object, not only the settings), as JSON."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s;"
        "from django.core.files.storage import storages; d = storages['default'];"
        "print(json.dumps({'class': type(d).__name__, 'threads': s.STORAGE_THREADS, **{k: getattr(d, k, None) for k"
        " in ('bucket_name', 'endpoint_url', 'region_name', 'access_key', 'secret_key', 'default_acl',"
        " 'querystring_auth', 'file_overwrite')}}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("S3_", "STORAGE_", "DJANGO_"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "xrayweb.settings", "DJANGO_SECRET_KEY": "k", **env},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_s3_variables_switch_the_file_storage_to_a_private_bucket() -> None:
    local = _storage()
    assert (local["class"], local["threads"]) == ("FileSystemStorage", 1)
    s3 = _storage(
        S3_BUCKET="xray-files",
        S3_ENDPOINT_URL="https://minio.example.org:9000",
        S3_REGION="eu-west-3",
        S3_ACCESS_KEY_ID="AKIA-TEST",
        S3_SECRET_ACCESS_KEY="s3cr3t",
    )
    assert s3 == {
        "class": "S3Storage",
        "threads": 16,  # object storage answers each call in tens of ms: files are read and written in parallel
        "bucket_name": "xray-files",
        "endpoint_url": "https://minio.example.org:9000",
        "region_name": "eu-west-3",
        "access_key": "AKIA-TEST",
        "secret_key": "s3cr3t",
        "default_acl": None,  # the bucket's own policy: never public-read
        "querystring_auth": True,  # any URL handed out is signed and expires
        "file_overwrite": False,  # a second file of one name never replaces the first
    }
    assert _storage(S3_BUCKET="b", STORAGE_THREADS="4")["threads"] == 4
    unset = _storage(S3_BUCKET="b")
    assert (unset["endpoint_url"], unset["region_name"], unset["access_key"]) == (None, None, None)  # AWS defaults


def test_a_bad_s3_endpoint_fails_loudly() -> None:
    result = _load_settings(DJANGO_SECRET_KEY="k", S3_BUCKET="b", S3_ENDPOINT_URL="ftp://minio:21")
    assert result.returncode != 0 and "S3_ENDPOINT_URL" in result.stderr
