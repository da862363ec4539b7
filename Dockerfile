# fleetsim in a container: docker compose --profile fleetsim up -d (see docker-compose.yml).
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY config config
# Cargo.toml names the benchmark, so its source must be there for the manifest to load.
COPY benches benches
RUN cargo build --release --locked --bin fleetsim

FROM debian:bookworm-slim
COPY --from=build /src/target/release/fleetsim /usr/local/bin/fleetsim
COPY config /etc/fleetsim
USER nobody
EXPOSE 8000
ENTRYPOINT ["fleetsim"]
CMD ["exporter", "--servers", "10"]
