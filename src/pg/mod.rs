//! PostgreSQL connection plumbing shared by the Odoo source, the control state and the sinks:
//! libpq-style connection URLs, TLS by `sslmode`, and ordinary (non-replication) SQL connections.

mod tls;

pub use tls::{client_config, TlsError};

use tokio_postgres::Client;

use crate::config::{PgConnInfo, SslMode};

/// Errors of ordinary SQL connections, with the server named (never its password).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("TLS setup for {target}: {source}")]
    Tls { target: String, source: TlsError },
    #[error("cannot connect to {target}: {source}")]
    Connect { target: String, source: tokio_postgres::Error },
}

/// Opens an ordinary SQL connection and drives it on a background task.
pub async fn connect(info: &PgConnInfo) -> Result<Client, ConnectError> {
    let target = info.to_string();
    let config = tokio_config(info);
    let client = if info.sslmode == SslMode::Disable {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|source| ConnectError::Connect { target: target.clone(), source })?;
        spawn_connection(connection, target);
        client
    } else {
        let tls_config = client_config(info).map_err(|source| ConnectError::Tls { target: target.clone(), source })?;
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new((*tls_config).clone());
        let (client, connection) =
            config.connect(tls).await.map_err(|source| ConnectError::Connect { target: target.clone(), source })?;
        spawn_connection(connection, target);
        client
    };
    Ok(client)
}

fn spawn_connection<F>(connection: F, target: String)
where
    F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%target, %error, "PostgreSQL connection closed with an error");
        }
    });
}

/// The tokio-postgres configuration; TLS is chosen by the caller from `sslmode`.
pub fn tokio_config(info: &PgConnInfo) -> tokio_postgres::Config {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&info.host)
        .port(info.port)
        .user(&info.user)
        .dbname(&info.dbname)
        .application_name(&info.application_name)
        .connect_timeout(info.connect_timeout)
        .ssl_mode(match info.sslmode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        });
    if let Some(password) = &info.password {
        config.password(password.expose());
    }
    config
}
