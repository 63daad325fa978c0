# One HQ script image (built by `hq script build scripts/<name>`). The build context is assembled by
# hq/imaging.py: requirements.txt, src/ (the script folder, without example data), and the host's CA
# bundle, which only the first stage sees: pip works behind a TLS-inspecting proxy, and the final
# image trusts only its own distribution's CAs. Labels (hq.manifest, hq.script, hq.context-sha256)
# are added by the build call. Build with network_mode=host.
ARG BASE_IMAGE=hq-base:bookworm

FROM ${BASE_IMAGE} AS build
COPY hq-host-ca.crt /tmp/hq-host-ca.crt
COPY requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/venv \
 && PIP_CERT=/tmp/hq-host-ca.crt SSL_CERT_FILE=/tmp/hq-host-ca.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=120 \
    /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt

FROM ${BASE_IMAGE}
RUN (getent group 1000 > /dev/null || groupadd --gid 1000 hq) \
 && (getent passwd 1000 > /dev/null || useradd --uid 1000 --gid 1000 --create-home hq)
COPY --from=build /opt/venv /opt/venv
COPY src/ /app/
ENV PATH=/opt/venv/bin:$PATH \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MPLCONFIGDIR=/tmp
WORKDIR /app
USER 1000:1000
