# syntax=docker/dockerfile:1
#
# The shop binary in a small image: built with the `dist` profile (LTO,
# stripped), run as a non-root user, its database on a volume.
#
#   docker build -t shop .
#   docker run -d --name shop -p 7467:7467 -v shop-data:/data \
#     -e SHOP_ADMIN_EMAIL=admin@example.com -e SHOP_ADMIN_PASSWORD=... shop
#   docker exec shop shop db backup /data/backup.db
#
# The README's "Running in a container" walks through it.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in a layer of their own: a source change does not
# rebuild them. Every crate is stubbed so that cargo can resolve and build
# the dependency graph; the real sources replace the stubs below.
COPY Cargo.toml Cargo.lock ./
COPY wire/Cargo.toml wire/Cargo.toml
COPY server/Cargo.toml server/Cargo.toml
COPY cli/Cargo.toml cli/Cargo.toml
COPY tui/Cargo.toml tui/Cargo.toml
RUN for crate in wire server cli tui; do mkdir -p $crate/src && touch $crate/src/lib.rs; done \
 && mkdir -p src && echo 'fn main() {}' > src/main.rs \
 && cargo build --profile dist --locked --bin shop \
 && rm -rf src wire/src server/src cli/src tui/src
COPY . .
# `touch`: the stubs' build outputs are newer than the copied sources' mtimes.
RUN touch src/main.rs wire/src/lib.rs server/src/lib.rs cli/src/lib.rs tui/src/lib.rs \
 && cargo build --profile dist --locked --bin shop \
 && cp target/dist/shop /usr/local/bin/shop

FROM debian:bookworm-slim
# CA certificates: Stripe, SMTP and webhook receivers are reached over TLS
# with the system's roots.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin shop \
 && mkdir /data && chown shop:shop /data
COPY --from=build /usr/local/bin/shop /usr/local/bin/shop
USER shop
WORKDIR /data
# The database, its WAL and (when none is configured) the generated JWT
# secret live here; SHOP_DB points the CLI's `shop db backup` here too.
VOLUME ["/data"]
ENV SHOP_ADDR=0.0.0.0:7467 \
    SHOP_DB=/data/shop.db \
    SHOP_LOG_FORMAT=json
EXPOSE 7467
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["shop", "status", "--url", "http://127.0.0.1:7467", "-q"]
ENTRYPOINT ["shop"]
CMD ["serve"]
