//! The `vitalstream` command line: `run`, `demo`, `loadgen`, `healthcheck`,
//! `config`, `schemas`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use vitalstream::codec::schemas;
use vitalstream::config::{Config, TelemetryConfig};
#[cfg(feature = "simulator")]
use vitalstream::demo::{self, DemoOptions};
#[cfg(feature = "simulator")]
use vitalstream::gateway::{self, Gateway, GatewayConfig};
use vitalstream::healthcheck;
use vitalstream::kafka::{TopicSpec, client_config, ensure_topics};
use vitalstream::pipeline;
use vitalstream::telemetry::{self, Stats};
use vitalstream::tools::{self, RedriveArgs, ResetArgs, TailArgs};

/// mimalloc instead of glibc's malloc: profiling a 1 M-reading catch-up
/// showed a third of the process's CPU in glibc's allocator (_int_malloc,
/// unlink_chunk, malloc_consolidate, _int_free) for the many short-lived
/// buffers, futures and librdkafka messages per reading (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Real-time processor for connected-health measurements on Kafka.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the pipeline against a Kafka cluster until SIGTERM or ctrl-c.
    Run {
        /// TOML configuration file; `VITALSTREAM_*` env variables override it
        /// (`VITALSTREAM_KAFKA__BROKERS=host:9092`).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Create the input and output topics if they do not exist.
        #[arg(long)]
        create_topics: bool,
        /// Partitions for topics created with --create-topics.
        #[arg(long, default_value_t = 6)]
        partitions: i32,
        /// Replication factor for topics created with --create-topics (3 on a
        /// production cluster; at most the number of brokers).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
        replication_factor: i32,
    },
    /// Run everything in one process: in-process Kafka, simulated gateway,
    /// pipeline; print live progress and a summary.
    #[cfg(feature = "simulator")]
    Demo {
        /// Use a real broker (HOST:PORT) instead of the in-process one.
        #[arg(long)]
        brokers: Option<String>,
        /// Readings the simulated gateway sends.
        #[arg(long, default_value_t = 20_000)]
        readings: u64,
        /// Gateway send rate, readings per second.
        #[arg(long, default_value_t = 5_000)]
        rate: u64,
        /// Simulated patients.
        #[arg(long, default_value_t = 200)]
        patients: usize,
        /// Partitions per topic.
        #[arg(long, default_value_t = 3)]
        partitions: i32,
    },
    /// Simulated device gateway: write realistic raw readings to a broker.
    #[cfg(feature = "simulator")]
    Loadgen {
        /// TOML configuration file whose `[kafka]` (connection,
        /// `[kafka.security]`, `[kafka.librdkafka]`), `[topics]` (raw and
        /// patients topic names) and `[schemas]` (the schema ids written)
        /// sections are used; `VITALSTREAM_*` env variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Bootstrap servers, HOST:PORT[,HOST:PORT]; overrides `kafka.brokers`.
        #[arg(long)]
        brokers: Option<String>,
        /// Readings per second.
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        /// How long to run, e.g. `30s`, `5m`.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
        duration: Duration,
        /// Stop after this many readings (whichever comes first).
        #[arg(long)]
        count: Option<u64>,
        /// Raw readings topic; overrides `topics.raw` (default
        /// `vitals.readings.raw`).
        #[arg(long)]
        topic: Option<String>,
        /// Patients topic the simulated patients' profiles are written to
        /// first; overrides `topics.patients` (default `vitals.patients`).
        #[arg(long)]
        patients_topic: Option<String>,
        /// Simulated patients.
        #[arg(long, default_value_t = 200)]
        patients: usize,
        /// Share of duplicate re-sends.
        #[arg(long, default_value_t = 0.03)]
        duplicate_ratio: f64,
        /// Share of undecodable records.
        #[arg(long, default_value_t = 0.01)]
        malformed_ratio: f64,
        /// Share of implausible readings.
        #[arg(long, default_value_t = 0.02)]
        out_of_range_ratio: f64,
        /// Share of readings from patients without a profile.
        #[arg(long, default_value_t = 0.005)]
        unknown_patient_ratio: f64,
        /// RNG seed (reading ids include it: use distinct seeds for distinct runs).
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Create the raw and patients topics if they do not exist.
        #[arg(long)]
        create_topics: bool,
        /// Partitions for topics created with --create-topics.
        #[arg(long, default_value_t = 6)]
        partitions: i32,
        /// Replication factor for topics created with --create-topics.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
        replication_factor: i32,
    },
    /// Ask a running instance's `/readyz` (or `/healthz` with --live) on the
    /// configured `http.listen_addr`; exit 0 if it answers 2xx, else 1. For a
    /// container HEALTHCHECK: the image has no curl.
    Healthcheck {
        /// TOML configuration file (for `http.listen_addr`); `VITALSTREAM_*`
        /// env variables override it.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Ask this address instead of the configured one.
        #[arg(long)]
        addr: Option<std::net::SocketAddr>,
        /// Ask `/healthz` (the processing loop turns) instead of `/readyz`
        /// (partitions assigned, state restored, Kafka reachable).
        #[arg(long)]
        live: bool,
        /// How long to wait for the connection and for the answer.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
        timeout: Duration,
    },
    /// Inspect the configuration without connecting to Kafka.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Print the Avro schemas (the wire contract) as JSON: one object
    /// mapping each record name to its schema, or one schema with --name.
    Schemas {
        /// One schema, by record name (`RawReading`) or file stem
        /// (`raw_reading`), e.g. to register it with a schema registry.
        #[arg(long)]
        name: Option<String>,
    },
    /// Print a topic's records as JSON lines (read_committed, each value
    /// decoded with its writer schema; decimals as strings); joins no
    /// consumer group.
    Tail(TailArgs),
    /// Prepare a replay: with every instance of the group stopped, reset
    /// the raw topic's committed offsets (earliest, or --to-datetime) and
    /// clear the state changelog, as Kafka Streams' reset tool does, so
    /// the replay reprocesses rather than dropping duplicates. Refuses
    /// while the group has active members.
    Reset(ResetArgs),
    /// Dead-letter queue tools.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
}

#[derive(Debug, Subcommand)]
enum DlqAction {
    /// Re-publish to the raw topic the dead-lettered readings that can now
    /// succeed (original key and bytes), at most --max per run; a re-run
    /// does not re-publish the same DLQ records again. Prints what it did.
    Redrive(RedriveArgs),
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Print the effective configuration (defaults, then the file, then
    /// `VITALSTREAM_*` env variables) as TOML, every secret shown as
    /// `[redacted]`.
    Dump {
        /// TOML configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Load and validate the configuration, reading every secret file and
    /// variable it names; exit 0 if `run` would accept it.
    Check {
        /// TOML configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run {
            config,
            create_topics,
            partitions,
            replication_factor,
        } => {
            let config = Config::load(config.as_deref())?;
            telemetry::init_logging(&config.telemetry);
            if create_topics {
                let client = client_config(&config.kafka);
                let specs: Vec<TopicSpec> =
                    TopicSpec::all(&config.topics, &config.kafka.group_id, partitions)
                        .into_iter()
                        .map(|spec| spec.replicated(replication_factor))
                        .collect();
                ensure_topics(&client, &specs)
                    .await
                    .context("creating topics")?;
            }
            let stats = Arc::new(Stats::default());
            match pipeline::run(config, stats, shutdown_signal()).await {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    tracing::error!(error = %e, "pipeline stopped with an error");
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2)))
                }
            }
        }
        #[cfg(feature = "simulator")]
        Command::Demo {
            brokers,
            readings,
            rate,
            patients,
            partitions,
        } => {
            telemetry::init_logging(&TelemetryConfig {
                log_level: "warn".into(),
                ..Default::default()
            });
            let opts = DemoOptions {
                brokers,
                readings,
                rate_per_s: rate,
                partitions,
                gateway: GatewayConfig {
                    patients,
                    ..Default::default()
                },
            };
            let summary = demo::run(opts).await?;
            println!("\n{summary}");
            Ok(if summary.adds_up() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        #[cfg(feature = "simulator")]
        Command::Loadgen {
            config,
            brokers,
            rate,
            duration,
            count,
            topic,
            patients_topic,
            patients,
            duplicate_ratio,
            malformed_ratio,
            out_of_range_ratio,
            unknown_patient_ratio,
            seed,
            create_topics,
            partitions,
            replication_factor,
        } => {
            let mut config = Config::load(config.as_deref())?;
            if let Some(brokers) = brokers {
                config.kafka.brokers = brokers;
            }
            let topic = topic.unwrap_or(config.topics.raw);
            let patients_topic = patients_topic.unwrap_or(config.topics.patients);
            telemetry::init_logging(&TelemetryConfig::default());
            let client = client_config(&config.kafka);
            if create_topics {
                let specs = [
                    TopicSpec::new(&topic, partitions).replicated(replication_factor),
                    TopicSpec::compacted(&patients_topic, partitions)
                        .replicated(replication_factor),
                ];
                ensure_topics(&client, &specs)
                    .await
                    .context("creating topics")?;
            }
            let codec = vitalstream::codec::Codec::new(config.schemas)?;
            let mut gw = Gateway::new(
                codec,
                GatewayConfig {
                    patients,
                    duplicate_ratio,
                    malformed_ratio,
                    out_of_range_ratio,
                    unknown_patient_ratio,
                    seed,
                    ..GatewayConfig::default()
                },
            );
            let profiles = gateway::publish_profiles(&client, &patients_topic, &gw).await?;
            println!("published {profiles} patient profiles to {patients_topic}");
            let report =
                gateway::produce(&client, &topic, &mut gw, rate, count, Some(duration), |r| {
                    println!("sent {}", r.sent);
                })
                .await?;
            println!(
                "sent {} readings ({} bytes of keys and values): {} valid, {} duplicates, {} malformed, {} out of range",
                report.sent,
                report.bytes,
                report.valid_total(),
                report.duplicates,
                report.malformed,
                report.out_of_range
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Healthcheck {
            config,
            addr,
            live,
            timeout,
        } => {
            let addr = match addr {
                Some(addr) => addr,
                None => healthcheck::target(Config::load(config.as_deref())?.http.listen_addr),
            };
            let path = if live { "/healthz" } else { "/readyz" };
            Ok(match healthcheck::check(addr, path, timeout) {
                Ok(body) => {
                    println!("{body}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("unhealthy: {e}");
                    ExitCode::from(1)
                }
            })
        }
        Command::Config {
            action: ConfigAction::Dump { config },
        } => {
            let config = Config::load(config.as_deref())?;
            print!("{}", config.to_redacted_toml()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            action: ConfigAction::Check { config },
        } => {
            Config::load(config.as_deref())?;
            println!("configuration is valid");
            Ok(ExitCode::SUCCESS)
        }
        Command::Tail(args) => {
            let config = tool_config(args.config.as_deref(), args.brokers.as_deref())?;
            let mut out = std::io::BufWriter::new(std::io::stdout());
            tools::tail(&config, &args, &mut out, shutdown_signal()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Reset(args) => {
            let config = tool_config(args.config.as_deref(), args.brokers.as_deref())?;
            match tools::reset(&config, &args).await {
                Ok(report) => {
                    let mode = if args.dry_run {
                        " (dry run, nothing changed)"
                    } else {
                        ""
                    };
                    println!("reset of group {}{mode}:\n{report}", config.kafka.group_id);
                    Ok(ExitCode::SUCCESS)
                }
                Err(e @ tools::ToolError::Refused(_)) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(3))
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Dlq {
            action: DlqAction::Redrive(args),
        } => {
            let config = tool_config(args.config.as_deref(), args.brokers.as_deref())?;
            let report = tools::redrive(&config, &args).await?;
            let mode = if args.dry_run { " (dry run)" } else { "" };
            println!("dlq redrive{mode}: {report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Schemas { name } => {
            let json = schemas::json(name.as_deref())?;
            println!("{}", serde_json::to_string_pretty(&json)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Resolves on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutdown signal received");
}

/// The configuration of an operator tool (tail, reset, dlq redrive): the
/// file with `--brokers` over it, and logs at warn so the tool's own output
/// stays readable.
fn tool_config(path: Option<&std::path::Path>, brokers: Option<&str>) -> anyhow::Result<Config> {
    let mut config = Config::load(path)?;
    if let Some(brokers) = brokers {
        brokers.clone_into(&mut config.kafka.brokers);
    }
    telemetry::init_logging(&TelemetryConfig {
        log_level: "warn".into(),
        ..config.telemetry.clone()
    });
    Ok(config)
}
