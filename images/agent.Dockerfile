# The HQ agent image: `hq agent`, which starts job containers as siblings through the host's
# Docker socket. Build from the repository root:
#   docker build -f images/agent.Dockerfile --network host -t hq-agent .
# Run it with the socket and the work folder mounted at the SAME path inside and outside
# (compose/agent.yml does): the job containers' bind mounts name host paths, so the input cache
# and job folders must be where the engine looks for them.
# It runs as root: whoever holds the Docker socket is root on the host anyway, and root lets the
# agent hand each job's outputs folder to the script user (uid 1000). Job containers themselves
# never run as root.
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
COPY --from=build /opt/hq /opt/hq
ENV PATH=/opt/hq/bin:$PATH \
    HQ_AGENT_WORK_DIR=/var/lib/hq-agent \
    PYTHONUNBUFFERED=1
# SIGTERM drains: running jobs finish and are reported before the agent exits.
STOPSIGNAL SIGTERM
CMD ["hq", "agent"]
