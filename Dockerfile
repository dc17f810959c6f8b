# One image for the operator and every workload it creates (simulator StatefulSets, migration Jobs,
# sentinel CronJobs): `dynoline operator`, `dynoline simulate ...`, `dynoline db migrate`,
# `dynoline sentinel run ...` are all subcommands of the same entry point.
#
#   docker build -t ghcr.io/dynoline/dynoline:0.1.0 .
#   helm install dynoline charts/dynoline --set image.tag=0.1.0
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY workloads ./workloads
COPY controllers ./controllers
# A wheel of the project and of its runtime dependencies only (no dev tools, no embedded PostgreSQL).
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels dynoline \
    && groupadd --system --gid 10001 dynoline \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --shell /usr/sbin/nologin dynoline
# Matches runAsUser/runAsGroup in the chart and in the pods the operator makes; the root filesystem can
# be read-only (the simulator's spool and the operator's temp files live on emptyDir volumes).
USER 10001:10001
EXPOSE 8080 9108 9110
ENTRYPOINT ["dynoline"]
CMD ["operator"]
