# One image for the web server and the maintenance worker; the GPU inference worker uses Dockerfile.gpu.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 && rm -rf /var/lib/apt/lists/*
# Exact versions with hashes (`make lock` writes the lock from requirements.txt).
COPY requirements.lock .
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY . .
# The translation catalogs, compiled here (.mo files are build output, never in the repository: tools/messages.py).
RUN python -m tools.messages --quiet
# The media volume mounts at /data/media: created here, owned by the app user, so the volume starts writable.
RUN groupadd --gid 10001 app && useradd --create-home --uid 10001 --gid 10001 app \
    && mkdir -p /data/media && chown -R 10001:10001 /data
USER 10001:10001
ENV XRAY_DATA_DIR=/data MEDIA_ROOT=/data/media
RUN DJANGO_SECRET_KEY=build python manage.py collectstatic --noinput -v 0
EXPOSE 8000
CMD ["gunicorn", "xrayweb.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--timeout", "120", "--preload"]
