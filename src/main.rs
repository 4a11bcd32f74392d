//! The `loket` binary: configuration, wiring and the command line. Errors here are `anyhow`,
//! with the context of what was being done when they happened.

mod config;
mod overload;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};

#[derive(Parser)]
#[command(name = "loket", version, about = "Contact-center server with CTI, IVR and a CRM console")]
struct Cli {
    /// The configuration file; without it, `loket.toml` if present, else the embedded defaults.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format; overrides `log.format`.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the console, the API and (from the SIP issue on) telephony.
    Serve {
        /// Load the demo municipality first and print the demo users' passwords.
        #[arg(long)]
        demo: bool,
    },
    /// Bring the database schema up to date and exit.
    Migrate,
    /// The demo municipality.
    Demo {
        #[command(subcommand)]
        command: DemoCommand,
    },
    /// Configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum DemoCommand {
    /// Load the demo municipality; loading it twice changes nothing.
    Seed,
    /// Add generated citizens and cases for load tests (after `demo seed`).
    Generate {
        #[arg(long, default_value_t = 50_000)]
        contacts: usize,
        #[arg(long, default_value_t = 100_000)]
        cases: usize,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration file; each error names the file, the key and the line.
    Check { file: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Config { command: ConfigCommand::Check { file } } = &cli.command {
        return match config::parse_file(file).map_err(|error| error.to_string()).and_then(|config| {
            config.mail.load()?;
            config.register.open(serve::current_year())?;
            config.ivr.load()
        }) {
            Ok(ivr) => {
                println!("{}: valid ({} IVR flows)", file.display(), ivr.flows().len());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("{error}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("loket: invalid configuration: {error}");
            return ExitCode::FAILURE;
        }
    };
    init_tracing(&config, cli.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("loket: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("loket: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { demo } => serve::serve(config, demo).await,
        Command::Migrate => {
            let db = serve::open_database(&config).await?;
            db.close().await;
            println!("database is up to date ({})", db.backend().name());
            Ok(())
        }
        Command::Demo { command: DemoCommand::Seed } => {
            let db = serve::open_database(&config).await?;
            serve::seed_demo(&db, &config).await.context("seeding the demo municipality")?;
            db.close().await;
            Ok(())
        }
        Command::Demo { command: DemoCommand::Generate { contacts, cases } } => {
            let db = serve::open_database(&config).await?;
            serve::seed_demo(&db, &config).await.context("seeding the demo municipality")?;
            let now = loket_crm::clock::Clock::System.now();
            loket_crm::generate::generate(&db, contacts, cases, now).await.context("generating citizens and cases")?;
            db.close().await;
            println!("generated {contacts} citizens and {cases} cases");
            Ok(())
        }
        Command::Config { .. } => unreachable!("handled before the runtime starts"),
    }
}

fn init_tracing(config: &Config, format_flag: Option<LogFormat>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("LOKET_LOG").unwrap_or_else(|_| EnvFilter::new(&config.log.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format_flag.unwrap_or(config.log.format) {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
