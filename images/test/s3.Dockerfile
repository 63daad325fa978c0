# An S3 server image standing in for MinIO where no MinIO image can be pulled (this project's CI):
# moto's server on the offline base image. It takes MinIO's command line (`server /data ...`) and
# MINIO_ROOT_USER/MINIO_ROOT_PASSWORD (moto accepts any credentials), listens on :9000 and keeps
# its objects across restarts in /data through moto's request journal (replayed on start), so the
# compose file's volume means what it means with MinIO. For tests only: moto checks no signature.
# Build from the repository root, with the host's CA bundle at images/ca/extra-ca.crt when pip
# must trust it:
#   docker build -f images/test/s3.Dockerfile --network host -t hq-test/s3:moto .
ARG BASE_IMAGE=hq-base:bookworm

FROM ${BASE_IMAGE} AS build
COPY images/ca/ /tmp/ca/
RUN python3 -m venv /opt/moto \
 && if [ -s /tmp/ca/extra-ca.crt ]; then export PIP_CERT=/tmp/ca/extra-ca.crt; fi \
 && PIP_DISABLE_PIP_VERSION_CHECK=1 /opt/moto/bin/pip install --no-cache-dir \
    'moto[s3,server]>=5.2,<5.3' flask flask-cors

FROM ${BASE_IMAGE}
COPY --from=build /opt/moto /opt/moto
COPY images/test/s3-entrypoint.py /usr/local/bin/hq-s3-entrypoint
COPY images/test/mc /usr/local/bin/mc
ENV PATH=/opt/moto/bin:$PATH \
    AWS_DEFAULT_REGION=us-east-1
VOLUME /data
EXPOSE 9000
ENTRYPOINT ["/opt/moto/bin/python", "/usr/local/bin/hq-s3-entrypoint"]
CMD ["server", "/data"]
