# syntax=docker/dockerfile:1
#
# Image of `ssl-coordinator`, the gRPC control plane. Build it from the repository root:
#
#   docker build -f deploy/docker/coordinator.Dockerfile -t ssl-coordinator:0.1.0 .
#
# The cache mounts need BuildKit (the default builder of Docker 23 and later, and Buildah).

ARG RUST_IMAGE=rust:1.95-trixie
ARG RUNTIME_IMAGE=debian:trixie-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The registry and target caches survive between builds, so a change to the coordinator
# recompiles only the workspace crates. The binary is copied out of the target cache,
# because the cache mount is not part of the image.
RUN --mount=type=cache,id=ssl-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=ssl-target-trixie,target=/src/target,sharing=locked \
    cargo build --release --locked -p ssl-coordinator --bin ssl-coordinator \
    && install -D -m 0755 target/release/ssl-coordinator /out/ssl-coordinator

FROM ${RUNTIME_IMAGE}
# ca-certificates: root certificates for any TLS connection the coordinator opens.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 ssl \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/ssl-train --shell /usr/sbin/nologin ssl \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/ssl-train
COPY --from=build /out/ssl-coordinator /usr/local/bin/ssl-coordinator

# Inside a container the loopback default of --listen would be unreachable. Without
# API tokens (SSL_TOKEN_FILE) or --insecure the coordinator refuses to start, so
# listening on every interface does not open the API by itself.
ENV SSL_LISTEN=0.0.0.0:50051 \
    SSL_DATA_DIR=/var/lib/ssl-train
WORKDIR /var/lib/ssl-train
USER 10001:10001
# 50051: gRPC API and grpc.health.v1.Health; 9464: Prometheus /metrics with --metrics-listen.
EXPOSE 50051 9464
ENTRYPOINT ["/usr/local/bin/ssl-coordinator"]
