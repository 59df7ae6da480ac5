# syntax=docker/dockerfile:1
# Relata: one image for the API (default), the worker and migrations. See docs/deploy.md.
#   docker build -t relata .
#   docker run --env-file relata.env -p 8000:8000 relata         # API
#   docker run --env-file relata.env relata relata worker        # worker
#   docker run --env-file owner.env relata relata migrate        # migrations, as the owning role

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY app ./app
# Editable install: `relata migrate` finds alembic.ini and alembic/ next to the app package, so
# the source stays in /app and the virtualenv points at it. The embedded PostgreSQL and Valkey
# servers are an extra (`.[embedded]`) for `make run` / `make test` only and are not installed.
RUN pip install -c requirements.lock -e . \
 && python -m compileall -q /app/app

FROM python:${PYTHON_VERSION}-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RELATA_ENV=production
RUN groupadd --system --gid 10001 relata \
 && useradd --system --uid 10001 --gid relata --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin relata
WORKDIR /app
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app/app ./app
COPY alembic.ini ./
COPY alembic ./alembic
USER relata
EXPOSE 8000
CMD ["relata", "serve", "--host", "0.0.0.0"]
