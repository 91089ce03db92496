//! `culturespa`: the CultureSPA Studio server and command-line tool.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use culturespa::analysis;
use culturespa::auth;
use culturespa::curation;
use culturespa::engine::batch::{BatchLimits, DEFAULT_MAX_BATCH_SEQUENCES, DEFAULT_MAX_BATCH_TOKENS};
use culturespa::engine::bench::{
    run_score_bench, run_train_bench, set_compute_threads, ScoreBenchOptions, TrainBenchOptions, DEFAULT_CEILING_ROWS,
};
use culturespa::engine::DeviceKind;
use culturespa::models::{self, ModelRegistry, ModelSource};
use culturespa::pipeline;
use culturespa::pipeline::runner::{run_command, RunTarget};
use culturespa::server::{self, ServeOptions};
use culturespa::store::Store;
use culturespa::survey::SurveyData;
use shared::auth::Role;
use shared::Stage;

#[derive(Debug, Parser)]
#[command(name = "culturespa", version, about = "Culture alignment of language models (CultureSPA)")]
struct Cli {
    /// A folder with the four WVS data files, instead of the copies embedded in the binary.
    #[arg(long, global = true, env = "CULTURESPA_WVS_DATA")]
    wvs_data: Option<PathBuf>,
    /// Where models are installed (scripts/fetch-model.sh puts them in models/).
    #[arg(long, global = true, env = "CULTURESPA_MODELS_DIR", default_value = models::DEFAULT_MODELS_DIR)]
    models_dir: PathBuf,
    /// Run the models' projections as bf16 GEMMs on AMX tiles (`run`, `serve`, the stage
    /// commands, `bench score`); f32 (the reference) otherwise. A portable loop stands in where the CPU lacks AMX.
    #[arg(long, global = true, env = "CULTURESPA_AMX")]
    amx: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and the browser app.
    Serve {
        #[arg(long, env = "CULTURESPA_ADDR", default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Where the database and run outputs live; created on first start.
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
        /// The Trunk-built frontend.
        #[arg(long, env = "CULTURESPA_STATIC_DIR", default_value = "dist")]
        static_dir: PathBuf,
        /// The model of runs that name none (a catalogue name, a model in --models-dir, or a path).
        #[arg(long, env = "CULTURESPA_MODEL", default_value = server::DEFAULT_MODEL)]
        model: String,
    },
    /// Work with the WVS data.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Score the paper's released answer files (wvs_result_*.json) with the paper's metric.
    ScoreReleased {
        /// The folder of released files; the embedded Llama-3-8B release when omitted.
        dir: Option<PathBuf>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// The persona meter of a stored run: first-option share, share of culture-aware answers
    /// that differ from the unaware ones, their mean total variation, and per culture the change
    /// of the paper's metric and 1 − JSD with 95 % bootstrap intervals beside a uniform answerer.
    PersonaMeter {
        #[arg(long)]
        run: i64,
        /// A culture-aware variant: P1, P2, P3, P1+P3, P2+P3.
        #[arg(long, default_value = "P1")]
        variant: String,
        #[arg(long, default_value_t = analysis::DEFAULT_RESAMPLES, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        resamples: u32,
        #[arg(long, default_value_t = analysis::DEFAULT_SEED)]
        seed: u64,
        /// Print the meter as JSON.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// The persona meter as a quick run: answers about --questions WVS questions (a sample of
    /// each topic drawn with --seed) unaware and with each --variants persona for --cultures in
    /// scoring mode with the levers asked for, then prints the meter of each variant. The run is
    /// stored; `run --resume ID` finishes it.
    Sensitivity {
        #[arg(long, env = "CULTURESPA_MODEL", default_value = server::DEFAULT_MODEL)]
        model: String,
        #[arg(long, default_value_t = 26, value_parser = clap::value_parser!(u32).range(1..=i64::from(pipeline::sensitivity::MAX_QUESTIONS)))]
        questions: u32,
        /// Country codes (comma-separated); all 18 when omitted.
        #[arg(long, value_delimiter = ',')]
        cultures: Vec<String>,
        /// Culture-aware variants (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "P1")]
        variants: Vec<String>,
        /// Where the persona goes: system (the paper), user, both.
        #[arg(long, value_enum, default_value = "system")]
        persona: PersonaArg,
        /// How options are scored: digits (the option codes; the paper) or cloze (the option texts).
        #[arg(long, default_value = "digits", value_parser = parse_serde_name::<shared::ScoringFormulation>)]
        scoring: shared::ScoringFormulation,
        /// Calibration of the option distributions: none, content_free or permutation.
        #[arg(long, default_value = "none", value_parser = parse_serde_name::<shared::Calibration>)]
        calibration: shared::Calibration,
        #[arg(long, default_value_t = analysis::DEFAULT_RESAMPLES, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        resamples: u32,
        #[arg(long, default_value_t = analysis::DEFAULT_SEED)]
        seed: u64,
        #[arg(long)]
        json: bool,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// Import released answers (culture-unaware and P1) as a run and collect its instances.
    ImportReleased {
        /// The folder of released files; the embedded Llama-3-8B release when omitted.
        dir: Option<PathBuf>,
        /// The run's name; by default after the model (the folder's name).
        #[arg(long)]
        name: Option<String>,
        /// Where the database lives.
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// Do a run: all its stages, with progress bars; Ctrl-C stops it so that `--resume` continues.
    Run {
        /// A run file (TOML): name, cultures, topics, questions_per_topic, variants, answer_mode,
        /// seed, stages, and optionally model and question_set.
        #[arg(long, required_unless_present = "resume", conflicts_with = "resume")]
        config: Option<PathBuf>,
        /// Resume a stored run where it stopped.
        #[arg(long)]
        resume: Option<i64>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Do (or finish) only the generate stage of a stored run: new questions per topic, filtered.
    Generate {
        #[arg(long)]
        run: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Do (or finish) only the answer stage of a stored run.
    Answer {
        #[arg(long)]
        run: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Do (or finish) only the collect stage of a stored run.
    Collect {
        #[arg(long)]
        run: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Do (or finish) only the evaluate stage (the 259 WVS questions) of a stored run.
    Evaluate {
        #[arg(long)]
        run: i64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Train a LoRA adapter (PEFT layout) on an SFT file: ours or LLaMA-Factory's alpaca, or
    /// `messages` records. Run it again on the same --out to resume a killed training.
    Train {
        /// A GGUF file or a Hugging Face model folder.
        #[arg(long, env = "CULTURESPA_MODEL", default_value = server::DEFAULT_MODEL)]
        model: String,
        /// JSON lines or a JSON array of records.
        #[arg(long)]
        data: PathBuf,
        /// The adapter folder (created; checkpoints go to its checkpoints/ while training).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        training: TrainingArgs,
        /// Compute threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// cpu (f32) or cuda (bf16; needs a build with --features cuda).
        #[arg(long, default_value = "cpu")]
        device: DeviceKind,
    },
    /// The general-ability probe: perplexity on a held-out general text and accuracy on 40
    /// multiple-choice questions, for the model and for the model with each adapter (merged);
    /// one JSON line per setting.
    Probe {
        #[arg(long, env = "CULTURESPA_MODEL", default_value = server::DEFAULT_MODEL)]
        model: String,
        /// An adapter folder (PEFT layout); repeat for several.
        #[arg(long)]
        adapter: Vec<PathBuf>,
        #[arg(long, default_value = "cpu")]
        device: DeviceKind,
    },
    /// The model catalogue and the models folder: what runs can name and what is installed.
    Models {
        /// One JSON object per model instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Measure the inference engine.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Filter and import generated questions.
    Questions {
        #[command(subcommand)]
        command: QuestionsCommand,
    },
    /// User accounts. While none exists the server runs in open local mode.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Export a run's instances as SFT data (JSON lines and LLaMA-Factory's dataset_info.json).
    Export {
        #[arg(long = "run")]
        run_id: i64,
        #[arg(long, value_enum, default_value = "alpaca")]
        format: curation::ExportFormat,
        /// joint: one file for all cultures; specific: one file per culture.
        #[arg(long, value_enum, default_value = "joint")]
        mode: curation::ExportMode,
        /// Only instances reviewers accepted, with their changed or edited answers.
        #[arg(long)]
        accepted_only: bool,
        /// Only this culture (a country code).
        #[arg(long)]
        culture: Option<String>,
        /// The folder to write into; created if missing.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Add an account; the password comes from --password-stdin or CULTURESPA_PASSWORD.
    Add {
        username: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
    /// List the accounts.
    List {
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
}

/// Where runs are stored and which model answers by default.
#[derive(Debug, clap::Args)]
struct StoreArgs {
    /// Where the database lives.
    #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
    data_dir: PathBuf,
    /// The model of runs that name none (a catalogue name, a model in --models-dir, or a path).
    #[arg(long, env = "CULTURESPA_MODEL", default_value = server::DEFAULT_MODEL)]
    model: String,
}

/// LoRA and optimizer settings (the paper's by default).
#[derive(Debug, clap::Args)]
struct TrainingArgs {
    /// Stop after this many optimizer steps.
    #[arg(long)]
    max_steps: Option<usize>,
    #[arg(long, default_value_t = 8)]
    rank: usize,
    #[arg(long, default_value_t = 16.0)]
    alpha: f64,
    #[arg(long, default_value_t = 0.0)]
    dropout: f64,
    #[arg(long, default_value_t = 1e-4)]
    learning_rate: f64,
    #[arg(long, default_value_t = 1)]
    epochs: usize,
    /// Examples per optimizer step (the effective batch).
    #[arg(long, default_value_t = 128)]
    batch_size: usize,
    /// Examples per forward/backward pass.
    #[arg(long, default_value_t = 4)]
    micro_batch_size: usize,
    #[arg(long, default_value_t = shared::DEFAULT_SEED)]
    seed: u64,
}

impl TrainingArgs {
    fn settings(&self) -> culturespa::engine::TrainingSettings {
        use culturespa::engine::{LoraSettings, TrainingSettings};
        TrainingSettings {
            lora: LoraSettings { rank: self.rank, alpha: self.alpha, dropout: self.dropout, ..LoraSettings::default() },
            learning_rate: self.learning_rate,
            epochs: self.epochs,
            batch_size: self.batch_size,
            micro_batch_size: self.micro_batch_size,
            max_steps: self.max_steps,
            seed: self.seed,
            ..TrainingSettings::default()
        }
    }
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Score a make_prompts.py JSONL: one {"id","probs","answer"} line per prompt on stdout, a
    /// summary JSON as the last line on stderr (the formats of shared/bench/llamacpp_score.py).
    Score {
        /// A model of the catalogue or the models folder, a GGUF file or a Hugging Face folder.
        #[arg(long)]
        model: String,
        #[arg(long)]
        prompts: PathBuf,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        /// Score the first N prompts only (0 = all).
        #[arg(long, default_value_t = 0)]
        limit: usize,
        /// cpu (f32) or cuda (bf16; needs a build with --features cuda).
        #[arg(long, default_value = "cpu")]
        device: DeviceKind,
        /// Tokens per forward pass beyond the shared prefix.
        #[arg(long, default_value_t = DEFAULT_MAX_BATCH_TOKENS)]
        batch_tokens: usize,
        /// Prompts per forward pass.
        #[arg(long, default_value_t = DEFAULT_MAX_BATCH_SEQUENCES)]
        batch_prompts: usize,
        /// Skip measuring the f32 GEMM ceiling of the model's projections (done before scoring).
        #[arg(long)]
        no_ceiling: bool,
    },
    /// LoRA training throughput (tokens/s) beside the prefill throughput of the same sequences,
    /// as one JSON line on stdout.
    Train {
        #[arg(long, env = "CULTURESPA_MODEL", default_value = server::DEFAULT_MODEL)]
        model: String,
        /// An SFT file (e.g. from `culturespa export`).
        #[arg(long)]
        data: PathBuf,
        /// Optimizer steps to time.
        #[arg(long, default_value_t = 4)]
        steps: usize,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value = "cpu")]
        device: DeviceKind,
        #[arg(long, default_value_t = 8)]
        batch_size: usize,
        #[arg(long, default_value_t = 4)]
        micro_batch_size: usize,
        /// Timed repetitions after one untimed warm-up (the median is reported).
        #[arg(long, default_value_t = 3)]
        repeats: usize,
        /// Also time the same training through candle's autograd, side by side.
        #[arg(long)]
        with_autograd: bool,
    },
}

/// Where the persona goes in culture-aware prompts (`shared::PersonaPlacement`).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PersonaArg {
    System,
    User,
    Both,
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Validate the WVS data and print what it holds as JSON.
    Check,
}

#[derive(Debug, Subcommand)]
enum QuestionsCommand {
    /// Apply the paper's filters to generated-question files (.json or .json.gz), write the kept
    /// questions as JSON and print the counts.
    Filter {
        /// Generated-question files, e.g. data/generated/*/generated_questions_topic_*.json.gz.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where to write the kept questions (a JSON list).
        #[arg(long)]
        out: PathBuf,
        /// The question set the kept questions belong to.
        #[arg(long = "set", default_value = "generated")]
        question_set: String,
    },
    /// Filter generated-question files and store the kept questions as a question set.
    Import {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// The name of the question set.
        #[arg(long = "set")]
        question_set: String,
        /// Where the database lives.
        #[arg(long, env = "CULTURESPA_DATA_DIR", default_value = "var")]
        data_dir: PathBuf,
    },
}

fn main() -> ExitCode {
    culturespa::engine::bench::single_threaded_elementwise();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let registry = ModelRegistry::new(&cli.models_dir)?;
    let resolve = |spec: &str| registry.resolve(spec);
    match cli.command {
        Command::Models { json } => {
            let listings = registry.list();
            if json {
                for listing in &listings {
                    println!("{}", serde_json::to_string(listing)?);
                }
            } else {
                print!("{}", models_table(&listings, registry.models_dir()));
            }
            Ok(())
        }
        Command::Serve { addr, data_dir, static_dir, model } => {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(server::serve(ServeOptions {
                addr,
                data_dir,
                wvs_data: cli.wvs_data,
                static_dir: Some(static_dir),
                models: ModelSource::new(&cli.models_dir, model)?.with_bf16_projections(cli.amx),
            }))
        }
        Command::Data { command: DataCommand::Check } => {
            let survey = server::load_survey(cli.wvs_data.as_deref())?;
            let summary = serde_json::json!({
                "questions": survey.questions.len(),
                "records": survey.records.len(),
                "cultures": survey.cultures.len(),
                "topics": survey.topics.iter().map(|t| serde_json::json!({"index": t.index, "name": t.name, "questions": t.question_count})).collect::<Vec<_>>(),
            });
            println!("{summary}");
            Ok(())
        }
        Command::ScoreReleased { dir, json } => {
            let survey = server::load_survey(cli.wvs_data.as_deref())?;
            let released = analysis::load_released(dir.as_deref(), &survey)?;
            for skipped in &released.skipped_files {
                eprintln!("note: skipped {}: {}", skipped.file_name, skipped.reason);
            }
            let scores = analysis::score_released(&survey, &released);
            if json {
                println!("{}", serde_json::to_string_pretty(&scores)?);
            } else {
                print!("{}", analysis::render_table(&survey, &scores));
            }
            Ok(())
        }
        Command::PersonaMeter { run, variant, resamples, seed, json, data_dir } => {
            let variant = parse_variant_arg(&variant)?;
            let survey = server::load_survey(cli.wvs_data.as_deref())?;
            let runtime = tokio::runtime::Runtime::new()?;
            let meter = runtime.block_on(async {
                let store = Store::open(&data_dir).await?;
                anyhow::Ok(analysis::run_persona_meter(&store, &survey, run, variant, resamples, seed).await?)
            })?;
            match json {
                true => println!("{}", serde_json::to_string_pretty(&meter)?),
                false => print!("{}", pipeline::sensitivity::render_meters(&[meter])),
            }
            Ok(())
        }
        Command::Sensitivity {
            model,
            questions,
            cultures,
            variants,
            persona,
            scoring,
            calibration,
            resamples,
            seed,
            json,
            data_dir,
        } => {
            let variants = variants.iter().map(|text| parse_variant_arg(text)).collect::<anyhow::Result<Vec<_>>>()?;
            let persona = match persona {
                PersonaArg::System => shared::PersonaPlacement::System,
                PersonaArg::User => shared::PersonaPlacement::User,
                PersonaArg::Both => shared::PersonaPlacement::Both,
            };
            let plan = pipeline::sensitivity::SensitivityPlan {
                model,
                questions,
                cultures,
                variants,
                persona,
                scoring,
                calibration,
                seed,
            };
            let survey = std::sync::Arc::new(server::load_survey(cli.wvs_data.as_deref())?);
            let runtime = tokio::runtime::Runtime::new()?;
            let meters = runtime.block_on(async {
                let store = server::open_store(&data_dir, &survey).await?;
                let models = ModelSource::new(&cli.models_dir, plan.model.clone())?.with_bf16_projections(cli.amx);
                anyhow::Ok(
                    pipeline::sensitivity::run_sensitivity(
                        &store,
                        survey.clone(),
                        &models,
                        &data_dir,
                        &plan,
                        resamples,
                    )
                    .await?,
                )
            })?;
            match json {
                true => println!("{}", serde_json::to_string_pretty(&meters)?),
                false => print!("{}", pipeline::sensitivity::render_meters(&meters)),
            }
            Ok(())
        }
        Command::ImportReleased { dir, name, data_dir } => {
            let survey = server::load_survey(cli.wvs_data.as_deref())?;
            let released = analysis::load_released(dir.as_deref(), &survey)?;
            for skipped in &released.skipped_files {
                eprintln!("note: skipped {}: {}", skipped.file_name, skipped.reason);
            }
            let runtime = tokio::runtime::Runtime::new()?;
            let summary = runtime.block_on(async {
                // Not `open_store`: import what was asked for, not also the embedded release.
                let store = Store::open(&data_dir).await?;
                anyhow::Ok(analysis::import_released(&store, &survey, &released, name.as_deref()).await?)
            })?;
            let outcome = if summary.created { "imported as" } else { "already imported as" };
            println!(
                "{} {outcome} run {}: {} answers, {} culture-related instances in {} (question, culture) pairs",
                released.source, summary.run_id, summary.answers, summary.instances, summary.aware_answers
            );
            Ok(())
        }
        Command::Run { config, resume, store } => {
            let target = match (config, resume) {
                (_, Some(run_id)) => RunTarget::Resume(run_id),
                (Some(file), None) => RunTarget::Config(file),
                (None, None) => anyhow::bail!("give --config FILE or --resume ID"),
            };
            execute_run(cli.wvs_data.as_deref(), &cli.models_dir, cli.amx, store, target, None)
        }
        Command::Generate { run, store } => execute_run(
            cli.wvs_data.as_deref(),
            &cli.models_dir,
            cli.amx,
            store,
            RunTarget::Resume(run),
            Some(Stage::Generate),
        ),
        Command::Answer { run, store } => execute_run(
            cli.wvs_data.as_deref(),
            &cli.models_dir,
            cli.amx,
            store,
            RunTarget::Resume(run),
            Some(Stage::Answer),
        ),
        Command::Collect { run, store } => execute_run(
            cli.wvs_data.as_deref(),
            &cli.models_dir,
            cli.amx,
            store,
            RunTarget::Resume(run),
            Some(Stage::Collect),
        ),
        Command::Evaluate { run, store } => execute_run(
            cli.wvs_data.as_deref(),
            &cli.models_dir,
            cli.amx,
            store,
            RunTarget::Resume(run),
            Some(Stage::Evaluate),
        ),
        Command::Bench {
            command:
                BenchCommand::Score { model, prompts, threads, limit, device, batch_tokens, batch_prompts, no_ceiling },
        } => {
            set_compute_threads(threads);
            let options = ScoreBenchOptions {
                model: resolve(&model)?,
                prompts,
                threads,
                limit,
                device,
                batch_limits: BatchLimits {
                    max_tokens: batch_tokens,
                    max_sequences: batch_prompts,
                    ..BatchLimits::default()
                },
                ceiling_rows: if no_ceiling { Vec::new() } else { DEFAULT_CEILING_ROWS.to_vec() },
                bf16_projections: cli.amx,
            };
            let summary = run_score_bench(&options, std::io::stdout())?;
            eprintln!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Bench {
            command:
                BenchCommand::Train {
                    model,
                    data,
                    steps,
                    threads,
                    device,
                    batch_size,
                    micro_batch_size,
                    repeats,
                    with_autograd,
                },
        } => {
            set_compute_threads(threads);
            let settings = culturespa::engine::TrainingSettings {
                batch_size,
                micro_batch_size,
                ..culturespa::engine::TrainingSettings::default()
            };
            let summary = run_train_bench(&TrainBenchOptions {
                model: resolve(&model)?,
                data,
                steps,
                repeats,
                threads,
                device,
                settings,
                with_autograd,
            })?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Probe { model, adapter, device } => {
            for report in analysis::probe_model(&resolve(&model)?, &adapter, device)? {
                println!("{}", serde_json::to_string(&report)?);
            }
            Ok(())
        }
        Command::Train { model, data, out, training, threads, device } => {
            if let Some(threads) = threads {
                set_compute_threads(threads);
            }
            train_command(&resolve(&model)?, &data, &out, training.settings(), device)
        }
        Command::Questions { command: QuestionsCommand::Filter { files, out, question_set } } => {
            let survey = server::load_survey(cli.wvs_data.as_deref())?;
            let outcome = pipeline::filter_generated_files(&survey.records, &files, &question_set)?;
            pipeline::write_questions_json(&out, &outcome.questions)?;
            println!("{}", serde_json::to_string(&outcome.summary)?);
            Ok(())
        }
        Command::Questions { command: QuestionsCommand::Import { files, question_set, data_dir } } => {
            let survey = server::load_survey(cli.wvs_data.as_deref())?;
            let runtime = tokio::runtime::Runtime::new()?;
            let summary = runtime.block_on(async {
                let store = server::open_store(&data_dir, &survey).await?;
                anyhow::Ok(pipeline::import_generated_files(&store, &survey.records, &files, &question_set).await?)
            })?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
        Command::Users { command } => users_command(command),
        Command::Export { run_id, format, mode, accepted_only, culture, out, data_dir } => {
            let survey = server::load_survey(cli.wvs_data.as_deref())?;
            let country_code = culture.map(|code| code.to_ascii_uppercase());
            let options = curation::ExportOptions { run_id, format, mode, accepted_only, country_code };
            export_command(&survey, &options, &out, &data_dir)
        }
    }
}

/// The environment variable `users add` reads the password from without --password-stdin.
const PASSWORD_VARIABLE: &str = "CULTURESPA_PASSWORD";

/// `culturespa train`: a progress bar per optimizer step, then a JSON summary on stdout.
fn train_command(
    model: &Path,
    data: &Path,
    out: &Path,
    settings: culturespa::engine::TrainingSettings,
    device: DeviceKind,
) -> anyhow::Result<()> {
    use culturespa::engine::train::{prepare_examples, read_sft_file};
    settings.validate()?;
    let records = read_sft_file(data)?;
    let loaded = culturespa::engine::load_model(model, device)
        .with_context(|| format!("loading the model {}", model.display()))?;
    let examples = prepare_examples(&records, &loaded)?;
    let total = settings.total_steps(examples.len());
    let bar = indicatif::ProgressBar::new(total as u64).with_style(
        indicatif::ProgressStyle::with_template("train {bar:30} {pos}/{len} steps  {msg}  [{elapsed} < {eta}]")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let outcome = culturespa::engine::train(
        &loaded.model,
        &examples,
        &settings,
        out,
        Some(model.display().to_string()),
        |progress| {
            bar.set_position(progress.step as u64);
            bar.set_message(format!("loss {:.4}  lr {:.2e}", progress.loss, progress.learning_rate));
        },
        || false,
    )?;
    bar.finish_and_clear();
    let state = &outcome.state;
    let summary = serde_json::json!({
        "out": out.display().to_string(),
        "examples": examples.len(),
        "steps": state.step,
        "total_steps": state.total_steps,
        "resumed_from": outcome.resumed_from,
        "first_loss": state.losses.first().map(|(_, loss)| loss),
        "last_loss": state.losses.last().map(|(_, loss)| loss),
        "tokens_per_s": (state.tokens_per_second() * 10.0).round() / 10.0,
        "seconds": (state.seconds * 1000.0).round() / 1000.0,
    });
    println!("{summary}");
    Ok(())
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| format!("'{text}': one of annotator, collaborator, admin"))
}

fn users_command(command: UsersCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    match command {
        UsersCommand::Add { username, role, password_stdin, data_dir } => {
            auth::validate_username(&username)?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line).context("reading the password from standard input")?;
                line.trim_end_matches(['\r', '\n']).to_string()
            } else {
                std::env::var(PASSWORD_VARIABLE)
                    .with_context(|| format!("no password: pass --password-stdin or set {PASSWORD_VARIABLE}"))?
            };
            let password_hash = auth::hash_password(&password)?;
            let user = runtime.block_on(async {
                let store = Store::open(&data_dir).await?;
                anyhow::Ok(store.add_user(&username, &password_hash, role).await?)
            })?;
            println!("added {} ({}); the server now asks for a login to review", user.username, user.role.as_str());
        }
        UsersCommand::List { data_dir } => {
            let users = runtime.block_on(async { anyhow::Ok(Store::open(&data_dir).await?.users().await?) })?;
            if users.is_empty() {
                println!("no accounts: the server runs in open local mode");
            }
            for user in users {
                println!("{}\t{}", user.username, user.role.as_str());
            }
        }
    }
    Ok(())
}

fn export_command(
    survey: &SurveyData,
    options: &curation::ExportOptions,
    out: &Path,
    data_dir: &Path,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let files = runtime.block_on(async {
        let store = server::open_store(data_dir, survey).await?;
        anyhow::Ok(curation::export_run(&store, survey, options).await?)
    })?;
    let paths = curation::write_export(out, &files, options.format)?;
    let records: u64 = files.iter().map(|file| file.records).sum();
    println!("run {}: {records} records in {} file(s) in {}", options.run_id, files.len(), out.display());
    for (file, path) in files.iter().zip(&paths) {
        println!("{:>6}  {}", file.records, path.display());
    }
    println!("        {}", out.join(curation::export::DATASET_INFO_FILE).display());
    Ok(())
}

/// The catalogue and the models folder as a table.
fn models_table(listings: &[shared::ModelListing], models_dir: &Path) -> String {
    let mut table = format!("{:<24} {:<10} {:>9}  {:<11} {}\n", "NAME", "INSTALLED", "MB", "LICENCE", "MODEL");
    for listing in listings {
        let installed = if listing.installed { "yes" } else { "no" };
        let megabytes = listing.bytes.map(|b| format!("{:.1}", b as f64 / 1e6)).unwrap_or_default();
        let title = if listing.default { format!("{} (default)", listing.title) } else { listing.title.clone() };
        table.push_str(&format!(
            "{:<24} {installed:<10} {megabytes:>9}  {:<11} {title}\n",
            listing.name,
            listing.licence.as_deref().unwrap_or("?"),
        ));
    }
    table.push_str(&format!("models folder: {}; install one with scripts/fetch-model.sh NAME\n", models_dir.display()));
    table
}

/// A command-line value spelled as serde writes the enum (`content_free`).
fn parse_serde_name<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).map_err(|error| error.to_string())
}

/// A prompt variant as people write it (`P1`, `p1p3`, `P1+P3`, `unaware`).
fn parse_variant_arg(text: &str) -> anyhow::Result<shared::PromptVariant> {
    shared::analysis::parse_variant(text)
        .with_context(|| format!("unknown variant '{text}': unaware, P1, P2, P3, P1+P3 or P2+P3"))
}

fn execute_run(
    wvs_data: Option<&std::path::Path>,
    models_dir: &Path,
    amx: bool,
    store: StoreArgs,
    target: RunTarget,
    only: Option<Stage>,
) -> anyhow::Result<()> {
    let survey = std::sync::Arc::new(server::load_survey(wvs_data)?);
    let runtime = tokio::runtime::Runtime::new()?;
    let (run_id, status) = runtime.block_on(async {
        let database = server::open_store(&store.data_dir, &survey).await?;
        let models = ModelSource::new(models_dir, store.model.clone())?.with_bf16_projections(amx);
        anyhow::Ok(run_command(&database, survey, &models, target, only).await?)
    })?;
    eprintln!("run {run_id}: {status:?}");
    match status {
        shared::RunStatus::Failed => anyhow::bail!("run {run_id} failed"),
        _ => Ok(()),
    }
}
