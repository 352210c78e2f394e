# portshare container image.
#
#   docker build -t portshare:0.1.0 .
#   docker run --rm -p 8080:8080 \
#     -v "$PWD/my-portshare.toml:/etc/portshare/portshare.toml:ro" portshare:0.1.0
#
# The config baked in at /etc/portshare/portshare.toml is the repository's demo config
# (config/portshare.toml): its session tokens are public, and it listens on
# 127.0.0.1:8080, which nothing outside the container can reach. Mount your own config
# over it, with `listen = "0.0.0.0:8080"`, as deploy/kubernetes/portshare-sidecar.yaml
# does.
#
# No HEALTHCHECK: the slim runtime has no curl or wget, and Kubernetes ignores Docker
# health checks anyway; probe GET /healthz (alive) and GET /readyz (ready) on the
# listener from the orchestrator instead.
#
# tests/packaging.rs checks this file against the binary (flags, paths, user).

# ---- build stage ------------------------------------------------------------------
# Same Debian release as the runtime stage, so the binary's glibc matches.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Only what `cargo build` reads: the manifest, the lock file, the library and binary
# sources, and the benches the manifest declares (cargo refuses a declared target
# whose file is missing). Tests, fuzz targets and docs stay out.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --release --locked

# ---- runtime stage ----------------------------------------------------------------
FROM debian:bookworm-slim
# A fixed, unprivileged system account: no home, no login shell. The numeric USER
# below lets Kubernetes' runAsNonRoot verify it without reading /etc/passwd.
# The example config keeps shares in data/ beside it: that folder is the one
# place the image user may write (mount a volume there to keep shares).
RUN groupadd --system --gid 10001 portshare \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin portshare \
 && mkdir -p /etc/portshare/data \
 && chown 10001:10001 /etc/portshare/data
COPY --from=build /src/target/release/portshare /usr/local/bin/portshare
COPY config/portshare.toml /etc/portshare/portshare.toml
VOLUME ["/etc/portshare/data"]
USER 10001:10001
EXPOSE 8080
# SIGTERM stops accepting and drains open requests (--drain-seconds, default 10),
# then exits 0; give `docker stop --time` more than the drain.
STOPSIGNAL SIGTERM
ENTRYPOINT ["portshare"]
CMD ["serve", "--config", "/etc/portshare/portshare.toml"]
