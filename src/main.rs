//! The `millrace` command line. Parses arguments and hands over to `millrace::cmd`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use millrace::cmd::{self, CommandError};
use millrace::config::{Config, ProcessEnv};
use millrace::ops::logging::{self, LogFormat};

#[derive(Parser)]
#[command(name = "millrace", version, about = "Change-data-capture replication between Odoo and a legacy ERP")]
struct Cli {
    /// Configuration file; every value can also be set from the environment (MILLRACE_ODOO_URL, …).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum SourceArg {
    /// Odoo's PostgreSQL database, through logical replication.
    Odoo,
    /// The legacy ERP's tables, by polling.
    Legacy,
}

#[derive(Subcommand)]
enum Command {
    /// Create the publication, the logical replication slot and the control schema (idempotent).
    ///
    /// With --print-sql, run nothing: print what an administrator runs for a least-privileged
    /// deployment, on each database (the grants for the configured tables and mappings, the
    /// publication, the control schema).
    ///
    /// Example: millrace --config millrace.toml setup --print-sql --for erp | mariadb -u root
    Setup {
        /// Print the statements that would run, and run nothing.
        #[arg(long)]
        print_sql: bool,
        /// Only the statements for one database (with --print-sql).
        #[arg(long = "for", value_enum, requires = "print_sql")]
        part: Option<cmd::setup::SetupPart>,
    },
    /// Print committed row changes as they stream, without applying them.
    ///
    /// Example: millrace tail --json --until-caught-up > changes.jsonl
    Tail {
        /// One JSON object per line, in the Debezium envelope.
        #[arg(long)]
        json: bool,
        /// Advance the replication slot past what has been printed (otherwise the next run
        /// prints the same changes again).
        #[arg(long)]
        ack: bool,
        /// Stop once everything committed before the command started has been printed.
        #[arg(long)]
        until_caught_up: bool,
        /// Which system to tail.
        #[arg(long, value_enum, default_value_t = SourceArg::Odoo)]
        source: SourceArg,
    },
    /// Run the sync service: both directions, until SIGTERM or SIGINT (then drain and exit 0).
    ///
    /// Example: millrace --config millrace.toml run
    Run,
    /// Publish both sides' changes to the bus ([bus]) instead of applying them: the capture half
    /// of `run`. Two may run; one is active, the other takes over when it stops.
    ///
    /// Example: millrace --config millrace.toml capture
    Capture,
    /// Decide and apply the changes `capture` published ([bus]): the apply half of `run`. Two may
    /// run; one is active, the other takes over when it stops.
    ///
    /// Example: millrace --config millrace.toml apply
    Apply,
    /// Validate the config and mappings against both live databases; exit 1 listing each problem.
    Check,
    /// Show, retry or discard dead-lettered changes.
    Dlq {
        #[command(subcommand)]
        action: cmd::dlq::DlqAction,
    },
    /// Copy entities from their system of record to the other side (and the archive), in
    /// key-ordered chunks; resumable after a kill. The first run creates the replication slot
    /// and reads Odoo from its snapshot, so streaming continues exactly where it ends.
    ///
    /// Example: millrace --config millrace.toml backfill --entity item --entity bom
    Backfill {
        /// Entity to copy (repeatable); every mapped entity when none is named.
        #[arg(long = "entity", value_name = "ENTITY")]
        entities: Vec<String>,
        /// Rows per chunk (one target transaction and one checkpoint each).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
        chunk: u32,
        /// Start over instead of resuming where an interrupted backfill stopped.
        #[arg(long)]
        restart: bool,
    },
    /// Compare both sides of each entity through its mapping: only in Odoo, only in the ERP,
    /// different (naming each field and its owner), equal. Exit 0 when they agree, 3 when not.
    ///
    /// Example: millrace reconcile --out reconcile/ --bind
    Reconcile {
        /// Entity to compare (repeatable); every mapped entity when none is named.
        #[arg(long = "entity", value_name = "ENTITY")]
        entities: Vec<String>,
        /// Write the details there as differences.parquet and differences.csv.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// The summary as one JSON object.
        #[arg(long)]
        json: bool,
        /// Record a cross-reference for each record the mapping's match rules pair one to one
        /// (`[odoo] match`), so the first sync neither copies it nor conflicts; ambiguous
        /// matches are reported, never bound.
        #[arg(long)]
        bind: bool,
        /// Bind one record by hand, before comparing: ENTITY:KEY=ODOO_ID (a key of several
        /// fields comma-separated), for the ambiguous matches a reconcile reports (repeatable).
        /// Example: --pair item:PP-000010=10
        #[arg(long = "pair", value_name = "ENTITY:KEY=ODOO_ID")]
        pairs: Vec<String>,
        /// Show what writing the owner's version of each difference to the other side would
        /// change (a dry run: nothing is written without --apply). Records only the owner holds
        /// are created on the other side; those only the other side holds are left alone.
        #[arg(long)]
        repair: bool,
        /// With --repair: write it, through the engine (ownership, dead letters and the
        /// archive apply; each write is archived with the decision `repair`).
        #[arg(long, requires = "repair")]
        apply: bool,
    },
    /// Write the current state of entities (or whole tables) as Parquet files for BI.
    ///
    /// Example: millrace export --entity item --out exports/   (writes exports/item.parquet)
    Export {
        /// Entity to export (repeatable); every mapped entity when neither this nor --table is given.
        #[arg(long = "entity", value_name = "ENTITY")]
        entities: Vec<String>,
        /// A whole table instead, with its own columns and types (repeatable).
        #[arg(long = "table", value_name = "TABLE")]
        tables: Vec<String>,
        /// Which side to read: for entities, each one's system of record by default; for tables, odoo.
        #[arg(long, value_enum)]
        side: Option<SourceArg>,
        /// Output directory: one `<entity or table>.parquet` per export.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Lag, positions, decisions, parked changes and dead letters.
    Status {
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// jemalloc, not the system allocator: glibc's kept the memory of grown buffers and of other
/// threads' arenas after it was freed, so a long poll's RSS grew far past what was in use.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    // One thread drives everything: the work is a pipeline of I/O waits, and a multi-threaded
    // runtime spent more time handing wake-ups between threads than decoding.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("millrace: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let code = error.exit_code();
            match &error {
                CommandError::Runtime(e) => eprintln!("millrace: {e:#}"),
                CommandError::Config(e) => eprintln!("millrace: {e}"),
                CommandError::Differences(e) => eprintln!("millrace: {e}"),
            }
            ExitCode::from(code as u8)
        }
    }
}

async fn run(cli: Cli) -> Result<(), CommandError> {
    let (path, explicit) = match cli.config {
        Some(path) => (path, true),
        None => (PathBuf::from("millrace.toml"), false),
    };
    let config = Config::load(&path, explicit, &ProcessEnv)?;
    match cli.command {
        Command::Setup { print_sql, part } => cmd::setup::run(&config, print_sql, part).await?,
        Command::Run => cmd::run::run(&config).await?,
        Command::Capture => cmd::capture::run(&config).await?,
        Command::Apply => cmd::apply::run(&config).await?,
        Command::Check => cmd::check::run(&config).await?,
        Command::Dlq { action } => cmd::dlq::run(&config, action).await?,
        Command::Status { json } => cmd::status::run(&config, json).await?,
        Command::Backfill { entities, chunk, restart } => {
            cmd::backfill::run(&config, cmd::backfill::BackfillOptions { entities, chunk: chunk as usize, restart })
                .await?
        }
        Command::Reconcile { entities, out, json, bind, pairs, repair, apply } => {
            let repair = match (repair, apply) {
                (false, _) => millrace::reconcile::Repair::Off,
                (true, false) => millrace::reconcile::Repair::DryRun,
                (true, true) => millrace::reconcile::Repair::Apply,
            };
            cmd::reconcile::run(&config, cmd::reconcile::ReconcileOptions { entities, out, json, bind, pairs, repair })
                .await?
        }
        Command::Export { entities, tables, side, out } => {
            let side = side.map(|s| match s {
                SourceArg::Odoo => millrace::mapping::System::Odoo,
                SourceArg::Legacy => millrace::mapping::System::Legacy,
            });
            cmd::export::run(&config, cmd::export::ExportOptions { entities, tables, side, out }).await?
        }
        Command::Tail { json, ack, until_caught_up, source } => {
            let options = cmd::tail::TailOptions { json, ack, until_caught_up };
            match source {
                SourceArg::Odoo => {
                    cmd::tail::run(config.odoo()?, options).await?;
                }
                SourceArg::Legacy => {
                    cmd::tail_legacy::run(config.legacy()?, config.state()?, options).await?;
                }
            }
        }
    }
    Ok(())
}
