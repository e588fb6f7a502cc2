//! The SQL Server connection: a TDS session that reconnects after a failure, streaming results
//! in batches.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use tiberius::{AuthMethod, Client, Column, ColumnData, Config, Query, QueryItem};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

use super::conn_string::ConnectSettings;
use super::convert::{read_cells, value_to_param};
use super::sql::translate_placeholders;
use super::BATCH_ROWS;
use crate::config::Secret;
use crate::erp::{Dialect, LegacyConnection, LegacyError, ReadRow, RowBatch};
use crate::model::Value;

/// SQL Server error numbers worth retrying: deadlock victim, lock timeout, and the connection,
/// failover and throttling errors Microsoft lists as transient for SQL Server and Azure SQL.
pub(crate) const TRANSIENT_SERVER_ERRORS: &[u32] = &[
    64, 233, 1205, 1222, 4060, 4221, 8645, 10053, 10054, 10060, 10928, 10929, 40143, 40197, 40501, 40540, 40613, 49918,
    49919, 49920,
];

pub(crate) fn is_transient(error: &tiberius::error::Error) -> bool {
    match error {
        // Connection refused, reset or lost, and timeouts: the server may be back on the next try.
        tiberius::error::Error::Io { .. } => true,
        tiberius::error::Error::Server(token) => TRANSIENT_SERVER_ERRORS.contains(&token.code()),
        _ => false,
    }
}

pub(crate) type TdsClient = Client<Compat<TcpStream>>;

pub(crate) enum Failure {
    Driver(tiberius::error::Error),
    /// The batch callback failed: its error is passed on as it is.
    Callback(LegacyError),
}

impl From<tiberius::error::Error> for Failure {
    fn from(e: tiberius::error::Error) -> Self {
        Failure::Driver(e)
    }
}

pub(crate) async fn open_tcp(addr: &str, timeout: Option<Duration>) -> Result<TcpStream, tiberius::error::Error> {
    let connect = TcpStream::connect(addr);
    let tcp = match timeout {
        Some(limit) => tokio::time::timeout(limit, connect).await.map_err(|_| tiberius::error::Error::Io {
            kind: std::io::ErrorKind::TimedOut,
            message: format!("TCP connect to {addr} timed out after {} s", limit.as_secs()),
        })??,
        None => connect.await?,
    };
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

pub(crate) async fn open_client(
    config: &Config,
    timeout: Option<Duration>,
) -> Result<TdsClient, tiberius::error::Error> {
    let tcp = open_tcp(&config.get_addr(), timeout).await?;
    match Client::connect(config.clone(), tcp.compat_write()).await {
        // Azure SQL's gateway may redirect the session to the node that serves the database.
        Err(tiberius::error::Error::Routing { host, port }) => {
            let mut redirected = config.clone();
            redirected.host(&host);
            redirected.port(port);
            let tcp = open_tcp(&redirected.get_addr(), timeout).await?;
            Client::connect(redirected, tcp.compat_write()).await
        }
        other => other,
    }
}

pub(crate) async fn stream_query(
    client: &mut TdsClient,
    sql: String,
    params: Vec<ColumnData<'static>>,
    on_batch: &mut dyn FnMut(RowBatch) -> Result<(), LegacyError>,
) -> Result<(), Failure> {
    let mut query = Query::new(sql);
    for param in params {
        query.bind(param);
    }
    let mut stream = query.query(client).await?;
    let mut batcher = RowBatcher::new(BATCH_ROWS);
    while let Some(item) = stream.try_next().await? {
        let ready = match item {
            QueryItem::Metadata(meta) => batcher.start(meta.columns()),
            QueryItem::Row(row) => batcher.push(&row),
        };
        if let Some(batch) = ready {
            on_batch(batch).map_err(Failure::Callback)?;
        }
    }
    if let Some(batch) = batcher.finish() {
        on_batch(batch).map_err(Failure::Callback)?;
    }
    Ok(())
}

/// Collects a result stream's rows into [`RowBatch`]es of at most `batch_rows`. Every result set
/// is delivered at least once, empty or not, so a caller asking only for column names
/// (`SELECT TOP (0) *`) gets them.
pub(crate) struct RowBatcher {
    batch_rows: usize,
    columns: Option<Arc<[String]>>,
    rows: Vec<ReadRow>,
    delivered: bool,
}

impl RowBatcher {
    fn new(batch_rows: usize) -> Self {
        RowBatcher { batch_rows: batch_rows.max(1), columns: None, rows: Vec::new(), delivered: false }
    }

    fn names(columns: &[Column]) -> Arc<[String]> {
        columns.iter().map(|c| c.name().to_string()).collect()
    }

    /// A result set starts: returns what is left of the previous one.
    fn start(&mut self, columns: &[Column]) -> Option<RowBatch> {
        let pending = self.take(false);
        self.columns = Some(Self::names(columns));
        self.delivered = false;
        pending
    }

    /// Adds a row: returns a full batch when there is one.
    fn push(&mut self, row: &tiberius::Row) -> Option<RowBatch> {
        if self.columns.is_none() {
            self.columns = Some(Self::names(row.columns()));
        }
        self.rows.push(read_cells(row.cells().map(|(column, data)| (column.column_type(), data))));
        if self.rows.len() >= self.batch_rows {
            self.take(true)
        } else {
            None
        }
    }

    /// The stream ended: returns the last batch.
    fn finish(&mut self) -> Option<RowBatch> {
        self.take(false)
    }

    fn take(&mut self, full: bool) -> Option<RowBatch> {
        let columns = self.columns.clone()?;
        if self.rows.is_empty() && self.delivered {
            return None;
        }
        self.delivered = true;
        let capacity = if full { self.batch_rows } else { 0 };
        Some(RowBatch { columns, rows: std::mem::replace(&mut self.rows, Vec::with_capacity(capacity)) })
    }
}

/// A connection to SQL Server over TDS.
///
/// Blocking, like every [`LegacyConnection`], and honestly so: the TDS session lives on a
/// dedicated thread of its own, which drives it with a single-threaded tokio runtime; each call
/// sends the work there and waits for the answer (a `select` receives its rows batch by batch
/// while the thread reads on). The calling thread never runs a runtime, so the connection can be
/// used from any blocking thread and dropped anywhere, inside async code too: dropping it ends
/// the thread, which closes the session.
///
/// After an I/O failure or timeout the TDS session is out of step with the server, so it is
/// dropped and the next call reconnects: a transient error can be retried on the same
/// `MssqlConnection`. Named instances need an explicit port (`server=tcp:host\\inst,1433`): the
/// SQL Browser lookup is not compiled in.
pub struct MssqlConnection {
    jobs: std::sync::mpsc::Sender<Job>,
    target: String,
    command_timeout: Option<Duration>,
}

/// Work for the session thread.
pub(crate) type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// A batch of rows on its way from the session thread to the caller of `select`.
pub(crate) type BatchSender = std::sync::mpsc::SyncSender<RowBatch>;

impl fmt::Debug for MssqlConnection {
    // Not derived, and the session (whose config holds the credentials) is not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MssqlConnection")
            .field("target", &self.target)
            .field("command_timeout", &self.command_timeout)
            .finish()
    }
}

/// The TDS session and what it needs to reconnect, owned by the session thread.
pub(crate) struct Session {
    runtime: tokio::runtime::Runtime,
    client: Option<TdsClient>,
    config: Config,
    /// The user and the password given apart from the string: read again at each (re)connect,
    /// so that a rewritten password file rotates it.
    credentials: Option<(String, Secret)>,
    target: String,
    connect_timeout: Option<Duration>,
}

impl Session {
    fn ensure_connected(&mut self) -> Result<(), LegacyError> {
        if self.client.is_none() {
            if let Some((user, password)) = &self.credentials {
                self.config.authentication(AuthMethod::sql_server(user, password.current().expose()));
            }
            let client = self.runtime.block_on(open_client(&self.config, self.connect_timeout)).map_err(|e| {
                LegacyError::Connect {
                    target: self.target.clone(),
                    message: e.to_string(),
                    transient: is_transient(&e),
                }
            })?;
            tracing::debug!(target = %self.target, "connected to SQL Server");
            self.client = Some(client);
        }
        Ok(())
    }

    /// The session's client and runtime, connecting first if needed.
    fn parts(&mut self) -> Result<(&mut TdsClient, &tokio::runtime::Runtime), LegacyError> {
        self.ensure_connected()?;
        match self.client.as_mut() {
            Some(client) => Ok((client, &self.runtime)),
            None => Err(LegacyError::Other(format!("no session to {}", self.target))),
        }
    }

    /// The result of a call on the session. After an error other than one the server reported
    /// for the statement, drops the session (it may be mid-response) so the next call reconnects.
    fn settle<T>(&mut self, table: &str, sql: &str, outcome: Result<T, Failure>) -> Result<T, LegacyError> {
        match outcome {
            Ok(value) => Ok(value),
            Err(Failure::Driver(e)) => {
                if !matches!(e, tiberius::error::Error::Server(_)) {
                    self.client = None;
                }
                Err(LegacyError::Query {
                    table: table.to_string(),
                    sql: sql.to_string(),
                    message: e.to_string(),
                    transient: is_transient(&e),
                })
            }
            Err(Failure::Callback(e)) => {
                // Reconnecting is cheaper than draining the rest of a large result on the next call.
                self.client = None;
                Err(e)
            }
        }
    }

    fn execute(&mut self, sql: &str, translated: String, binds: Vec<ColumnData<'static>>) -> Result<u64, LegacyError> {
        let (client, runtime) = self.parts()?;
        let future = async move {
            let mut query = Query::new(translated);
            for bind in binds {
                query.bind(bind);
            }
            Ok::<_, Failure>(query.execute(client).await?.total())
        };
        let outcome = runtime.block_on(future);
        self.settle("(statement)", sql, outcome)
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), LegacyError> {
        let (client, runtime) = self.parts()?;
        let future = async move {
            client.simple_query(sql).await?.into_results().await?;
            Ok::<_, Failure>(())
        };
        let outcome = runtime.block_on(future);
        self.settle("(batch)", sql, outcome)
    }

    fn select(
        &mut self,
        table: &str,
        sql: &str,
        translated: String,
        binds: Vec<ColumnData<'static>>,
        batches: BatchSender,
    ) -> Result<(), LegacyError> {
        let (client, runtime) = self.parts()?;
        let mut send = move |batch: RowBatch| {
            batches.send(batch).map_err(|_| LegacyError::Other("the reader of the rows stopped".to_string()))
        };
        let outcome = runtime.block_on(stream_query(client, translated, binds, &mut send));
        self.settle(table, sql, outcome)
    }
}

impl MssqlConnection {
    /// Connects with an ADO.NET connection string
    /// (`server=tcp:host,1433;user=millrace;database=erp;encrypt=true;TrustServerCertificate=false`).
    /// `password` overrides one in the string, so the string can live in the config file and the
    /// password in a secret. TLS follows the string's `encrypt` / `TrustServerCertificate` /
    /// `TrustServerCertificateCA`; `Connect Timeout` and `Command Timeout` (seconds, 0 = none) are
    /// honoured, defaulting to [`super::DEFAULT_CONNECT_TIMEOUT`] and
    /// [`super::DEFAULT_COMMAND_TIMEOUT`]. Connects at once, so a wrong password or host shows at
    /// startup. A `password` from a file is read again each time the session reconnects.
    pub fn connect(ado_connection_string: &str, password: Option<&Secret>) -> Result<MssqlConnection, LegacyError> {
        let current = password.map(Secret::current);
        let settings = ConnectSettings::parse(ado_connection_string, current.as_ref().map(Secret::expose))?;
        let target = settings.target.clone();
        let start_error = |message: String| LegacyError::Connect { target: target.clone(), message, transient: false };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| start_error(format!("cannot start an I/O runtime: {e}")))?;
        let mut session = Session {
            runtime,
            client: None,
            config: settings.config,
            credentials: settings.user.zip(password.cloned()),
            target: settings.target.clone(),
            connect_timeout: settings.connect_timeout,
        };
        let (jobs, inbox) = std::sync::mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("millrace-mssql".into())
            .spawn(move || {
                // Ends when the connection is dropped (the sender with it); the session and its
                // runtime are dropped here, on a thread that runs no other runtime.
                for job in inbox {
                    job(&mut session);
                }
            })
            .map_err(|e| start_error(format!("cannot start the session thread: {e}")))?;
        let mut connection = MssqlConnection { jobs, target, command_timeout: settings.command_timeout };
        connection.call(|session| session.ensure_connected())??;
        Ok(connection)
    }

    /// `host:port/database`, for logs.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Runs `work` on the session thread and waits for its result.
    fn call<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut Session) -> T + Send + 'static,
    ) -> Result<T, LegacyError> {
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        self.send(Box::new(move |session| {
            let _ = reply.send(work(session));
        }))?;
        answer.recv().map_err(|_| self.thread_gone())
    }

    fn send(&self, job: Job) -> Result<(), LegacyError> {
        self.jobs.send(job).map_err(|_| self.thread_gone())
    }

    fn thread_gone(&self) -> LegacyError {
        LegacyError::Other(format!("the SQL Server session thread for {} has stopped", self.target))
    }

    fn prepare(table: &str, sql: &str, params: &[Value]) -> Result<(String, Vec<ColumnData<'static>>), LegacyError> {
        let error = |message: String| LegacyError::Query {
            table: table.to_string(),
            sql: sql.to_string(),
            message,
            transient: false,
        };
        let (translated, placeholders) = translate_placeholders(sql);
        if placeholders != params.len() {
            return Err(error(format!(
                "the statement has {placeholders} placeholders but {} values were given",
                params.len()
            )));
        }
        let binds = params
            .iter()
            .enumerate()
            .map(|(i, value)| value_to_param(value).map_err(|e| error(format!("parameter {}: {e}", i + 1))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((translated, binds))
    }

    /// Runs a statement that returns no rows (DDL, `INSERT`, `UPDATE`, …) with `?` placeholders,
    /// and returns the number of rows it affected.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, LegacyError> {
        let (translated, binds) = Self::prepare("(statement)", sql, params)?;
        let sql = sql.to_string();
        self.call(move |session| session.execute(&sql, translated, binds))?
    }

    /// Runs fixed SQL as a plain batch, without parameters and discarding any rows: statements
    /// that must not run inside `sp_executesql`, such as `BEGIN TRANSACTION` and `COMMIT` (a
    /// transaction opened in `sp_executesql` must also end there) or `USE`. Never splice values
    /// into it: use [`MssqlConnection::execute`] for those.
    pub fn execute_batch(&mut self, sql: &str) -> Result<(), LegacyError> {
        let sql = sql.to_string();
        self.call(move |session| session.execute_batch(&sql))?
    }
}

impl LegacyConnection for MssqlConnection {
    fn dialect(&self) -> Dialect {
        Dialect::MsSql
    }

    /// The rows come over a channel of one batch while the session thread reads the next; when
    /// `on_batch` fails the channel is dropped, which stops the read (and the session is
    /// reconnected on the next call rather than drained).
    fn select(
        &mut self,
        table: &str,
        sql: &str,
        params: &[Value],
        on_batch: &mut dyn FnMut(RowBatch) -> Result<(), LegacyError>,
    ) -> Result<(), LegacyError> {
        let (translated, binds) = Self::prepare(table, sql, params)?;
        let (batches, incoming) = std::sync::mpsc::sync_channel::<RowBatch>(1);
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        let (job_table, job_sql) = (table.to_string(), sql.to_string());
        self.send(Box::new(move |session| {
            let _ = reply.send(session.select(&job_table, &job_sql, translated, binds, batches));
        }))?;
        let mut refused = None;
        for batch in incoming.iter() {
            if let Err(e) = on_batch(batch) {
                refused = Some(e);
                break;
            }
        }
        drop(incoming);
        let outcome = answer.recv().map_err(|_| self.thread_gone())?;
        match refused {
            Some(e) => Err(e),
            None => outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use tiberius::ColumnType;

    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn tds_row(n: i32) -> tiberius::Row {
        tiberius::Row::builder()
            .column("ID", ColumnType::Int4, ColumnData::I32(Some(n)))
            .column("PRICE", ColumnType::Money, ColumnData::F64(Some(1.5)))
            .build()
    }

    fn tds_columns() -> Vec<Column> {
        vec![Column::new("ID".into(), ColumnType::Int4), Column::new("PRICE".into(), ColumnType::Money)]
    }

    #[test]
    fn rows_are_batched_and_every_result_set_is_delivered() {
        let mut batcher = RowBatcher::new(2);
        let mut batches = Vec::new();
        batches.extend(batcher.start(&tds_columns()));
        for n in 0..5 {
            batches.extend(batcher.push(&tds_row(n)));
        }
        batches.extend(batcher.finish());
        assert_eq!(batches.iter().map(|b| b.rows.len()).collect::<Vec<_>>(), vec![2, 2, 1]);
        assert_eq!(&*batches[0].columns, &strings(&["ID", "PRICE"])[..]);
        assert_eq!(batches[2].rows[0], ReadRow::Ok(vec![Value::Int(4), Value::Decimal("1.5000".parse().unwrap())]));

        // A full last batch is not followed by an empty one.
        let mut batcher = RowBatcher::new(2);
        let mut batches = Vec::new();
        batches.extend(batcher.start(&tds_columns()));
        batches.extend(batcher.push(&tds_row(0)));
        batches.extend(batcher.push(&tds_row(1)));
        batches.extend(batcher.finish());
        assert_eq!(batches.len(), 1);

        // An empty result still tells its columns; a second result set flushes the first.
        let mut batcher = RowBatcher::new(BATCH_ROWS);
        let mut batches = Vec::new();
        batches.extend(batcher.start(&tds_columns()));
        batches.extend(batcher.push(&tds_row(0)));
        batches.extend(batcher.start(&[Column::new("X".into(), ColumnType::Int4)]));
        batches.extend(batcher.finish());
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].rows.len(), 1);
        assert!(batches[1].rows.is_empty());
        assert_eq!(&*batches[1].columns, &strings(&["X"])[..]);

        // No result set at all (a statement without rows): nothing.
        assert!(RowBatcher::new(2).finish().is_none());
    }

    // ---- connection settings ----

    #[test]
    fn io_failures_and_deadlocks_are_transient() {
        let io = tiberius::error::Error::Io { kind: std::io::ErrorKind::ConnectionReset, message: "reset".into() };
        assert!(is_transient(&io));
        assert!(!is_transient(&tiberius::error::Error::Tls("bad certificate".into())));
        assert!(!is_transient(&tiberius::error::Error::Conversion("x".into())));
    }

    // ---- polling through a fake connection ----
}
