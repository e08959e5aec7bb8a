# syntax=docker/dockerfile:1
# trainenv's images, from one source tree. Every binary is built by hack/build.sh, the script
# `make build` runs in CI, so CI exercises these build commands.
#
#   docker build --target node-agent -t trainenv/node-agent:dev .
#   docker build -t trainenv/manager:dev .        # the manager and the in-pod tools (last stage)
#
# The manager image is also the "tools image" (--tools-image / TRAINENV_TOOLS_IMAGE): an init
# container copies /usr/local/bin/trainenv-entrypoint and /usr/local/bin/trainenv-preflight
# from it into each user pod.
ARG GO_VERSION=1.26

# The Go toolchain, for the stages below.
FROM golang:${GO_VERSION}-bookworm AS go

# Static binaries (CGO_ENABLED=0): the manager, which never links NVML, and the in-pod
# entrypoint, which must run in any user image.
FROM go AS static
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN hack/build.sh manager /out && hack/build.sh entrypoint /out

# cgo binaries that load libnvidia-ml through go-nvml, linked against Ubuntu 20.04's glibc
# (2.31) with the Go toolchain copied in: the preflight then runs inside users' CUDA images
# (Ubuntu 20.04 and later), and build.sh fails if either binary needs a newer glibc.
FROM ubuntu:20.04 AS cgo
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev binutils ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=go /usr/local/go /usr/local/go
ENV PATH=/usr/local/go/bin:$PATH GOTOOLCHAIN=local GOFLAGS=-buildvcs=false MAX_GLIBC=2.31
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN hack/build.sh preflight /out && hack/build.sh node-agent /out

# The node agent: NVML needs glibc (the NVIDIA runtime injects libnvidia-ml.so.1).
FROM gcr.io/distroless/base-debian12:nonroot AS node-agent
COPY --from=cgo /out/node-agent /node-agent
USER 65532:65532
ENTRYPOINT ["/node-agent"]

# The manager, with the in-pod tools it hands to user pods. Its own binary is static.
FROM gcr.io/distroless/static-debian12:nonroot AS manager
COPY --from=static /out/manager /manager
COPY --from=static /out/trainenv-entrypoint /usr/local/bin/trainenv-entrypoint
COPY --from=cgo /out/trainenv-preflight /usr/local/bin/trainenv-preflight
USER 65532:65532
ENTRYPOINT ["/manager"]
