# syntax=docker/dockerfile:1
#
# Image of `ssl-worker` for NVIDIA GPUs. Build it from the repository root:
#
#   docker build -f deploy/docker/worker-gpu.Dockerfile -t ssl-worker-gpu:0.1.0 .
#
# The binary is built with the `wgpu` cargo feature and trains with `--device wgpu`, which
# drives the GPU through Vulkan. It needs the Vulkan loader in the image and the NVIDIA
# driver's Vulkan implementation, which the NVIDIA Container Toolkit mounts from the host
# when the `graphics` driver capability is requested (toolkit 1.12 or later also mounts the
# ICD file under /etc/vulkan/icd.d). No CUDA library is used, so the runtime stage is the
# same Debian image as the CPU worker rather than an nvidia/cuda one.
#
# NOTE: the `cuda` cargo feature is not built here: `--device` has no CUDA choice yet, and
# that feature's build script downloads an LLVM bundle, so it needs internet at build time.

ARG RUST_IMAGE=rust:1.95-trixie
ARG RUNTIME_IMAGE=debian:trixie-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,id=ssl-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=ssl-target-trixie-wgpu,target=/src/target,sharing=locked \
    cargo build --release --locked -p ssl-worker --bin ssl-worker --features wgpu,parquet \
    && install -D -m 0755 target/release/ssl-worker /out/ssl-worker

FROM ${RUNTIME_IMAGE}
# libvulkan1: the Vulkan loader that wgpu opens at run time. libglvnd0, libx11-6 and
# libxext6: libraries that the NVIDIA driver's Vulkan library (libGLX_nvidia.so.0) links to.
# ca-certificates: root certificates for S3 over HTTPS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libvulkan1 libglvnd0 libx11-6 libxext6 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 ssl \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/ssl-train --shell /usr/sbin/nologin ssl \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/ssl-train
COPY --from=build /out/ssl-worker /usr/local/bin/ssl-worker

# `graphics` makes the NVIDIA Container Toolkit mount the Vulkan driver. NVIDIA_VISIBLE_DEVICES
# is left unset on purpose: the Kubernetes device plugin sets it for pods that request
# nvidia.com/gpu, and `docker run --gpus` sets it too, so a pod without a GPU request sees no GPU.
# burn's GPU runtime (cubecl) keeps its kernel and autotune cache under XDG_CACHE_HOME, here
# under /tmp, which stays writable when the root filesystem is read-only (the Kubernetes
# manifests mount an emptyDir there). Pass `--device wgpu` to the agent to train on the GPU.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
    XDG_CACHE_HOME=/tmp/cache
WORKDIR /var/lib/ssl-train
USER 10001:10001
# 7000: data-plane listener for gradient exchange (--data-listen 0.0.0.0:7000);
# 9465: Prometheus /metrics with --metrics-listen.
EXPOSE 7000 9465
ENTRYPOINT ["/usr/local/bin/ssl-worker"]
