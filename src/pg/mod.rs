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
    #[error("cannot connect to {target}: {}", error_text(.error))]
    Connect { target: String, error: tokio_postgres::Error },
}

/// Opens an ordinary SQL connection and drives it on a background task.
pub async fn connect(info: &PgConnInfo) -> Result<Client, ConnectError> {
    let target = info.to_string();
    let config = tokio_config(info);
    let client = if info.sslmode == SslMode::Disable {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|error| ConnectError::Connect { target: target.clone(), error })?;
        spawn_connection(connection, target);
        client
    } else {
        let tls_config = client_config(info).map_err(|source| ConnectError::Tls { target: target.clone(), source })?;
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new((*tls_config).clone());
        let (client, connection) =
            config.connect(tls).await.map_err(|error| ConnectError::Connect { target: target.clone(), error })?;
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
            tracing::warn!(%target, error = error_text(&error), "PostgreSQL connection closed with an error");
        }
    });
}

/// The tokio-postgres configuration, with the password as it is now; TLS is chosen by the
/// caller from `sslmode`.
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
    // Read now, at each connection: a password file rewritten since the last one rotates it.
    if let Some(password) = &info.password {
        config.password(password.current().expose());
    }
    config
}

/// How long the read-through waits for a decoded transaction to become visible before the batch
/// is retried as an outage (a commit can only be invisible for the moment between its WAL record
/// and the end of the committing backend's transaction).
pub const VISIBILITY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Waits until transaction `xid` is visible to new snapshots of `client`'s session.
///
/// Logical decoding sends a transaction once its commit record is in the WAL, which happens
/// before the committing backend leaves the proc array: for a moment, a snapshot taken by
/// another session still sees the transaction as running and reads the rows as they were before
/// it. The read-through must never read that: it would decide on the old state (a `stale` that
/// loses the transaction). Visibility is monotonic, so once one snapshot sees `xid`, every later
/// statement of the session does too. The 32-bit xid of the stream is widened to the
/// `xid8` of the current epoch (or the one before, for an xid from just before a wraparound).
/// Fails with a message when the database cannot be asked or `xid` stays invisible for
/// [`VISIBILITY_TIMEOUT`].
pub async fn wait_visible(client: &tokio_postgres::Client, xid: u32) -> Result<(), String> {
    const SQL: &str = "SELECT pg_visible_in_snapshot( \
           (CASE WHEN ((s.nxt >> 32) << 32 | $1::bigint) >= s.nxt \
                 THEN (((s.nxt >> 32) - 1) << 32 | $1::bigint) \
                 ELSE ((s.nxt >> 32) << 32 | $1::bigint) END)::text::xid8, s.snap) \
         FROM (SELECT pg_current_snapshot() AS snap, \
                      pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS nxt) s";
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        let visible: Option<bool> = client.query_one(SQL, &[&i64::from(xid)]).await.map_err(|e| e.to_string())?.get(0);
        if visible != Some(false) {
            return Ok(());
        }
        if started.elapsed() > VISIBILITY_TIMEOUT {
            // Not read at all rather than read wrong: the batch is retried.
            return Err(format!(
                "transaction {xid} was decoded but is still not visible to new snapshots after {}s",
                VISIBILITY_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}

/// What went wrong, in the server's words: `tokio_postgres::Error`'s own `Display` says only
/// "db error" for everything the server reports. A server error gives its message, SQLSTATE,
/// and whichever of detail, hint, constraint and table it names; any other error gives the
/// driver's text followed by its causes (the I/O error behind a lost connection).
pub fn error_text(error: &tokio_postgres::Error) -> String {
    let Some(db) = error.as_db_error() else {
        let mut text = error.to_string();
        let mut cause = std::error::Error::source(error);
        while let Some(c) = cause {
            text.push_str(&format!(": {c}"));
            cause = c.source();
        }
        return text;
    };
    let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
    if let Some(detail) = db.detail() {
        text.push_str(&format!("; detail: {detail}"));
    }
    if let Some(hint) = db.hint() {
        text.push_str(&format!("; hint: {hint}"));
    }
    if let Some(constraint) = db.constraint() {
        text.push_str(&format!("; constraint {constraint}"));
    }
    if let Some(table) = db.table() {
        match db.schema() {
            Some(schema) => text.push_str(&format!("; table {schema}.{table}")),
            None => text.push_str(&format!("; table {table}")),
        }
    }
    text
}
