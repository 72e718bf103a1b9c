# syntax=docker/dockerfile:1
#
# Image of `ssl-worker` for CPU training. Build it from the repository root:
#
#   docker build -f deploy/docker/worker.Dockerfile -t ssl-worker:0.1.0 .
#
# worker-gpu.Dockerfile builds the same binary with the `wgpu` feature.

ARG RUST_IMAGE=rust:1.95-trixie
ARG RUNTIME_IMAGE=debian:trixie-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The registry and target caches survive between builds; the binary is copied out of
# the target cache, because the cache mount is not part of the image.
RUN --mount=type=cache,id=ssl-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=ssl-target-trixie,target=/src/target,sharing=locked \
    cargo build --release --locked -p ssl-worker --bin ssl-worker --features parquet \
    && install -D -m 0755 target/release/ssl-worker /out/ssl-worker

FROM ${RUNTIME_IMAGE}
# ca-certificates: root certificates for S3 over HTTPS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 ssl \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/ssl-train --shell /usr/sbin/nologin ssl \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/ssl-train
COPY --from=build /out/ssl-worker /usr/local/bin/ssl-worker

WORKDIR /var/lib/ssl-train
USER 10001:10001
# 7000: data-plane listener for gradient exchange (--data-listen 0.0.0.0:7000);
# 9465: Prometheus /metrics with --metrics-listen. The agent binds neither by default.
EXPOSE 7000 9465
ENTRYPOINT ["/usr/local/bin/ssl-worker"]
