# Production image: gunicorn for web, the same image runs the Celery worker and beat.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 CARELY_MODE=production \
    CARELY_VAR_DIR=/var/lib/carely

RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app --shell /usr/sbin/nologin carely \
    && mkdir -p /var/lib/carely && chown carely /var/lib/carely

WORKDIR /app
COPY pyproject.toml README.md ./
COPY carely ./carely
COPY manage.py ./
RUN pip install --no-cache-dir .

USER carely
EXPOSE 8000
# collectstatic needs only settings, not a database; the variables here satisfy the strict
# production checks for the build step alone and are replaced at run time.
RUN SECRET_KEY=build-only-build-only-build-only-build-only-build-only \
    CARELY_HASH_KEY=build-only ALLOWED_HOSTS=build DATABASE_URL=postgres://build/build \
    REDIS_URL=redis://build:6379/0 S3_BUCKET=build S3_REGION=eu-central-1 \
    INFOBIP_BASE_URL=https://build.invalid INFOBIP_API_KEY=build \
    CARELY_FIELD_KEYS=build:YnVpbGQtb25seS1idWlsZC1vbmx5LWJ1aWxkLW9ubHk= \
    CARELY_BLIND_INDEX_KEY=YnVpbGQtb25seS1idWlsZC1vbmx5LWJ1aWxkLW9ubHk= \
    python manage.py collectstatic --no-input
CMD ["gunicorn", "carely.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4"]
