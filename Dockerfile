# The inf-engine service image: `docker build -t inf-engine .`
#
# Two stages on the same base, so the virtual environment built in the first runs unchanged in
# the second (its interpreter symlink points at the base image's /usr/local/bin/python3.11).
# The runtime dependencies come from requirements/service.lock alone, and the project is
# installed as a regular (non-editable) wheel: no second dependency list exists to drift.

# ---- builder: the virtual environment in /opt/venv ------------------------------------------
FROM python:3.11-slim AS builder

# The uv version pinned in requirements/dev.lock (the tests check they agree).
ARG UV_VERSION=0.13.9

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_NO_CACHE=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    VIRTUAL_ENV=/opt/venv

RUN pip install "uv==${UV_VERSION}" \
    && uv venv --python /usr/local/bin/python3.11 /opt/venv

WORKDIR /src

# Dependencies first: this layer is rebuilt only when the lock file changes.
COPY requirements/service.lock requirements/service.lock
RUN uv pip sync --python /opt/venv/bin/python requirements/service.lock

# Then the project itself, built into a wheel and installed without touching the dependencies.
# The migration scripts are package data (app/db/migrations), so they ship in the wheel.
COPY pyproject.toml README.md ./
COPY app app
RUN uv pip install --python /opt/venv/bin/python --no-deps . \
    && /opt/venv/bin/inf-engine --help > /dev/null

# ---- runtime ---------------------------------------------------------------------------------
FROM python:3.11-slim AS runtime

# A fixed, non-root uid/gid 10001: the Kubernetes manifests run as the same one (runAsUser).
RUN groupadd --system --gid 10001 inf \
    && useradd --system --uid 10001 --gid inf --home-dir /srv/inf-engine \
       --no-create-home --shell /usr/sbin/nologin inf \
    && mkdir -p /srv/inf-engine/data \
    && chown -R 10001:10001 /srv/inf-engine

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INF_HOST=0.0.0.0

# The default database is SQLite in ./data (relative to this directory), writable by the user;
# set INF_DATABASE_URL to use Postgres instead.
WORKDIR /srv/inf-engine
USER 10001:10001

EXPOSE 8000

# Liveness of the HTTP process; slim images have no curl, so Python asks.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('INF_PORT', '8000') + '/healthz', timeout=4)"]

# `serve` migrates the database at start unless INF_AUTO_MIGRATE=false; run
# `inf-engine migrate` (this image with CMD ["migrate"]) to migrate separately.
ENTRYPOINT ["inf-engine"]
CMD ["serve"]
