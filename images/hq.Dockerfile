# The HQ image: the API server (`hq server`) and the Dash app (`hq dash`), one venv.
# Build from the repository root:  docker build -f images/hq.Dockerfile --network host -t hq .
# BASE_IMAGE defaults to the offline base (`hq base-image build`); python:3.11-slim works where
# Docker Hub is reachable. A CA bundle placed at images/ca/extra-ca.crt (not committed) is trusted
# by pip in the build stage only, for builds behind a TLS-inspecting proxy.
ARG BASE_IMAGE=hq-base:bookworm

FROM ${BASE_IMAGE} AS build
COPY images/ca/ /tmp/ca/
COPY pyproject.toml README.md /src/
# The dependencies first, from pyproject.toml alone (HQ's own packages are not there yet), so a
# change to HQ's code reuses this layer; the hq and agent images share it.
RUN python3 -m venv /opt/hq \
 && if [ -s /tmp/ca/extra-ca.crt ]; then export PIP_CERT=/tmp/ca/extra-ca.crt; fi \
 && PIP_DISABLE_PIP_VERSION_CHECK=1 /opt/hq/bin/pip install --no-cache-dir /src \
 && /opt/hq/bin/pip uninstall -y -q hq
COPY hq /src/hq
COPY agent /src/agent
COPY dash_app /src/dash_app
RUN if [ -s /tmp/ca/extra-ca.crt ]; then export PIP_CERT=/tmp/ca/extra-ca.crt; fi \
 && PIP_DISABLE_PIP_VERSION_CHECK=1 /opt/hq/bin/pip install --no-cache-dir --no-deps /src

FROM ${BASE_IMAGE}
RUN (getent group 1000 > /dev/null || groupadd --gid 1000 hq) \
 && (getent passwd 1000 > /dev/null || useradd --uid 1000 --gid 1000 --create-home hq) \
 && mkdir -p /var/lib/hq && chown 1000:1000 /var/lib/hq
COPY --from=build /opt/hq /opt/hq
ENV PATH=/opt/hq/bin:$PATH \
    HQ_HOME=/var/lib/hq \
    HQ_HOST=0.0.0.0 \
    PYTHONUNBUFFERED=1
USER 1000:1000
EXPOSE 8080 8050
CMD ["hq", "server"]
