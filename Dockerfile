# syntax=docker/dockerfile:1

# One image holds every ordo program in /usr/local/bin: gateway, worker, rebalance,
# ordoctl and the demo sink. Pick one with the container's command, e.g. `docker run IMAGE gateway`.
#
#   docker build -t ordo:dev .

FROM golang:1.26 AS build
# The image pins GOTOOLCHAIN=local; auto lets go.mod's go line fetch a newer 1.26.x
# toolchain should the image's be older.
ENV GOTOOLCHAIN=auto
WORKDIR /src
# Modules first, so that editing code does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/...

# debian-slim rather than distroless: the compose healthchecks call curl inside the
# container, and the programs have no health-check subcommand of their own.
FROM debian:trixie-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin ordo
COPY --from=build /out/gateway /out/worker /out/rebalance /out/ordoctl /out/sink /usr/local/bin/
USER 10001:10001
# gateway (ORDO_HTTP_ADDR), worker admin (ORDO_ADMIN_ADDR), sink (ORDO_SINK_ADDR).
EXPOSE 8080 9090 9000
CMD ["gateway"]
