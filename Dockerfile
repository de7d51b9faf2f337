# The scoring service: `anomaly serve` on CPU torch, as a non-root user. With the build argument
# EXTRAS="[ray,postgres]" (deploy/docker-compose.yml passes it) the same image runs every part of
# docs/deploy.md's topology: the MLflow tracking server, Ray nodes, one-off `anomaly train` / `audit` runs.
#   docker build -t anomaly .
#   docker run -p 8000:8000 -v "$PWD/runs/sample:/models/model:ro" anomaly
#     (uid 10001 reads the mounted bundle: `anomaly train` writes its files readable by all, 0644 under
#     umask 022; the server writes nothing there)
#   docker run -p 8000:8000 -e ANOMALY_MODEL=models:/mtd@champion -e MLFLOW_TRACKING_URI=http://mlflow:5000 anomaly
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# CPU-only torch from PyTorch's CPU index first: the default wheel pulls gigabytes of CUDA packages
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md ./
COPY anomaly ./anomaly
COPY service ./service
# [ray]: Ray Data for `anomaly audit --engine ray` and the nodes; [postgres]: psycopg for `mlflow server`
ARG EXTRAS=""
RUN pip install ".${EXTRAS}" && useradd --create-home --uid 10001 anomaly \
    && mkdir /mlartifacts && chown anomaly /mlartifacts  # the tracking server's artifact volume

USER anomaly
WORKDIR /home/anomaly
# Every setting is an environment variable (docs/service.md); MLFLOW_TRACKING_URI is read by MLflow
# itself when ANOMALY_MODEL is a runs:/ or models:/ URI.
ENV ANOMALY_MODEL=/models/model ANOMALY_HOST=0.0.0.0 ANOMALY_PORT=8000 ANOMALY_WORKERS=1
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['ANOMALY_PORT'] + '/healthz', timeout=4)"]
CMD ["anomaly", "serve"]
