# The offline Python base image, second step: the rootfs that `hq base-image build` made with
# debootstrap (python3, python3-venv, ca-certificates from Debian bookworm) and imported with
# `docker import`, plus the non-root user `hq` (uid/gid 1000) that every script runs as.
# No network is needed here: everything came from Debian packages in the first step.
ARG ROOTFS
FROM ${ROOTFS}
RUN (getent group hq || groupadd --gid 1000 hq) \
 && (getent passwd hq || useradd --uid 1000 --gid 1000 --create-home --shell /bin/bash hq) \
 && ln -sf /usr/bin/python3 /usr/local/bin/python \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /home/hq
CMD ["python3"]
