# syntax=docker/dockerfile:1
# Vigil: one static binary; the subcommand picks the role (`all` by default).

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/vigil ./cmd/vigil
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/vigil /vigil
# VIGIL_DATA_DIR (the embedded NATS server's JetStream files in `vigil all`, the dev secret
# key) must be writable by the nonroot user (uid 65532); mount a volume there to keep it.
COPY --from=build --chown=65532:65532 /out/data /data
ENV VIGIL_DATA_DIR=/data
WORKDIR /data
USER nonroot:nonroot
EXPOSE 8080 4223
ENTRYPOINT ["/vigil"]
CMD ["all"]
