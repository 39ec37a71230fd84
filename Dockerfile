# One image for the three services; docker-compose.yml picks the service with `--service`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY clinical ./clinical
COPY services ./services
COPY kit ./kit
COPY safetymon ./safetymon
# /data is the service account's alone (a new named volume copies this owner and 0700).
RUN pip install --no-cache-dir . && useradd --create-home safetymon \
    && install -d -m 0700 -o safetymon -g safetymon /data
USER safetymon
ENV SAFETYMON_DATA_DIR=/data SAFETYMON_LOG_FORMAT=json
ENTRYPOINT ["safetymon"]
