# millrace in a container (docker-compose.yml builds it; `docker build -t millrace .` alone works
# too). Multi-stage: the build needs the Rust toolchain and unixODBC's headers, the runtime only
# the binary, CA certificates (TLS to PostgreSQL / SQL Server with verify modes) and the unixODBC
# library the binary links against. No ODBC driver is installed: SQL Server is reached through
# its own protocol (kind = "mssql"); for another ERP, add its ODBC driver in an image FROM this.

FROM rust:1-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends unixodbc-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The release profile keeps line tables for backtraces: compressed here, not stripped.
RUN cargo build --release --locked \
 && objcopy --compress-debug-sections target/release/millrace /millrace
COPY mappings ./mappings
COPY docker/rowversion-mappings.sh ./docker/
# The mappings for the SQL Server demo ERP: rowversion on RV instead of timestamp on LAST_UPD.
RUN sh docker/rowversion-mappings.sh mappings /mappings-mssql

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libodbc2 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --user-group --uid 10001 --home-dir /app --no-create-home millrace
COPY --from=build /millrace /usr/local/bin/millrace
COPY --from=build /src/mappings /app/mappings
COPY --from=build /mappings-mssql /app/mappings-mssql
WORKDIR /app
USER millrace
# The HTTP endpoint (/metrics, /health, /ready, the operator page) when [http] listen says so.
EXPOSE 9464
# `millrace` reads ./millrace.toml by default: mount one at /app/millrace.toml, or pass
# --config, or configure it from the environment alone (MILLRACE_ODOO_URL, …).
ENTRYPOINT ["millrace"]
CMD ["--help"]
