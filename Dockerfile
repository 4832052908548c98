# The function's image: functions-framework serves `handle` (ASGI) on $PORT.
# Built by scripts/cluster-up.sh inside minikube (`minikube image build`), by docker compose, and
# by the test suite with podman (tests/deploy/test_image.py).
# BASE_IMAGE: the newest 3.11 patch of the official image (docker-library/official-images,
# library/python: "3.11.16-slim-bookworm"). To bump it, change the tag here; the tests check that it
# stays an exact python:3.11.N-slim-bookworm tag. Machines without a registry pass a locally made
# Debian base instead (scripts/build-base-image.sh).
ARG BASE_IMAGE=python:3.11.16-slim-bookworm
FROM ${BASE_IMAGE}

# PYTHONDONTWRITEBYTECODE: nothing is compiled at run time (the root filesystem is read-only);
#   the .pyc files are written once below, at build time.
# TMPDIR, XDG_RUNTIME_DIR: gunicorn's worker heartbeat file and its control socket need a
#   writable directory; /dev/shm is a tmpfs in every Docker and Kubernetes container.
# HOME: the application directory, which nothing writes to.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/app \
    TMPDIR=/dev/shm \
    XDG_RUNTIME_DIR=/dev/shm \
    PORT=8080

WORKDIR /app

# Runtime dependencies only, in their own layer: it is rebuilt only when a requirements file
# changes (requirements.txt names requirements-function.txt and constraints.txt).
COPY requirements.txt requirements-function.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt

# The `function` package (installed through pyproject.toml) and the source file the framework loads.
COPY pyproject.toml ./
COPY function/ ./function/
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info \
    && python -m compileall -q function \
    && chmod -R a+rX /app

# A numeric user, so that Kubernetes can check runAsNonRoot without reading /etc/passwd.
USER 10001:10001
EXPOSE 8080

# Exec form: gunicorn is PID 1 and receives SIGTERM itself, so it drains and exits cleanly.
# The port comes from $PORT (functions-framework reads it; Knative sets it to 8080).
CMD ["functions-framework", "--asgi", "--source", "function/main.py", "--target", "handle"]
