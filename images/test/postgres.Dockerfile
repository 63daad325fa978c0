# A PostgreSQL server image for the compose test and for air-gapped sites with no route to Docker
# Hub: Debian's postgresql-15 on the offline base image, with an entrypoint that honours what the
# official image reads (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB; data in
# /var/lib/postgresql/data) and password (scram-sha-256) auth for every host. Build from the
# repository root with the network (apt):
#   docker build -f images/test/postgres.Dockerfile --network host -t hq-test/postgres:15 .
# then `HQ_POSTGRES_IMAGE=hq-test/postgres:15 docker compose -f compose/hq.yml ... up -d`.
ARG BASE_IMAGE=hq-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql-15 \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb
COPY images/test/postgres-entrypoint.sh /usr/local/bin/hq-postgres-entrypoint
ENV PATH=/usr/lib/postgresql/15/bin:$PATH \
    PGDATA=/var/lib/postgresql/data
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["hq-postgres-entrypoint"]
CMD ["postgres"]
