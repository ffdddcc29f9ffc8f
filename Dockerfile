# pgvshard: one image for every role (proxy, shard). Multi-stage: built on
# the Rust image, run on Debian slim as an unprivileged user.
#   docker build -t pgvshard .
#   docker run pgvshard    # the embedded default (trust for loopback
#                          # clients only: docker exec … psql -h 127.0.0.1)
# docker-compose.yml runs the proxy and shards from it with config/.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin pgvshard \
    && cp target/release/pgvshard /usr/local/bin/pgvshard

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home \
        --home-dir /var/lib/pgvshard pgvshard
COPY --from=builder /usr/local/bin/pgvshard /usr/local/bin/pgvshard
COPY config /etc/pgvshard
USER pgvshard
WORKDIR /var/lib/pgvshard
# Clients, and the proxy's metrics (a shard's: --metrics-listen).
EXPOSE 6432 9632
# For config/cluster.yaml: every interface.
ENV PGVSHARD_LISTEN=0.0.0.0:6432 \
    PGVSHARD_METRICS_LISTEN=0.0.0.0:9632
# Healthy while the metrics endpoint answers (PGVSHARD_HEALTH_URL for a
# shard, whose metrics are on another port).
ENV PGVSHARD_HEALTH_URL=http://127.0.0.1:9632/metrics
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD curl -fsS -o /dev/null "$PGVSHARD_HEALTH_URL" || exit 1
ENTRYPOINT ["pgvshard"]
CMD ["--listen", "0.0.0.0:6432", "--metrics-listen", "0.0.0.0:9632"]
