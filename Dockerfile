# One image for the operator and every workload it creates (simulator StatefulSets, migration Jobs,
# sentinel CronJobs): `dynoline operator`, `dynoline simulate ...`, `dynoline db migrate`,
# `dynoline sentinel run ...` are all subcommands of the same entry point.
#
#   docker build -t dynoline:0.1.0 .   (nothing is published: the chart's default image.repository is `dynoline`)
#   helm install dynoline charts/dynoline --set image.tag=0.1.0
#
# Build arguments (both defaults give the image GitHub's kind job builds):
#   BASE_IMAGE  any Debian-like image with python3 3.11 and its venv module. tests/cluster/images.sh
#               passes a debootstrap'd bookworm with Debian's python3 (no registry on that machine).
#   WHEELS      where the build stage gets the dependency wheels: `pypi` (pip downloads them) or
#               `wheelhouse` (a `wheelhouse/` directory in the build context, filled on the host; pip
#               stays offline: `--no-index`). Only the selected stage is built (BuildKit, buildah >= 1.28;
#               buildah 1.28 prunes stages by the --build-arg values alone, so pass WHEELS explicitly).
ARG BASE_IMAGE=python:3.11-slim-bookworm
ARG WHEELS=pypi

FROM ${BASE_IMAGE} AS source
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY workloads ./workloads
COPY controllers ./controllers
# A throwaway venv for pip: Debian's own python3 is externally managed (PEP 668) and has no pip.
RUN python3 -m venv /opt/pip

# A wheel of the project and of its runtime dependencies only (no dev tools, no embedded PostgreSQL).
FROM source AS wheels-pypi
RUN /opt/pip/bin/pip wheel --wheel-dir /wheels .

FROM source AS wheels-wheelhouse
COPY wheelhouse /wheelhouse
RUN /opt/pip/bin/pip wheel --no-index --find-links=/wheelhouse --wheel-dir /wheels .

FROM wheels-${WHEELS} AS wheels

FROM ${BASE_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/tmp PATH=/opt/dynoline/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    python3 -m venv /opt/dynoline \
    && /opt/dynoline/bin/pip install --no-index --find-links=/wheels dynoline \
    && /opt/dynoline/bin/pip uninstall --quiet --yes pip setuptools \
    && groupadd --system --gid 10001 dynoline \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --shell /usr/sbin/nologin dynoline
# (pip and setuptools leave the runtime venv: nothing installs at run time.)
# Matches runAsUser/runAsGroup in the chart and in the pods the operator makes; the root filesystem can
# be read-only (the simulator's spool and the operator's temp files live on emptyDir volumes).
USER 10001:10001
EXPOSE 8080 9108 9110
ENTRYPOINT ["dynoline"]
CMD ["operator"]
