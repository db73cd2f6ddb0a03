//! `nnc tune FILE --grid NAME=VALUES --random NAME=SPEC`: hyper-parameter
//! search. Each trial is an ordinary `nnc run --set ... --out DIR/trial-N`
//! in a child process (up to one per core), so it leaves a normal run
//! directory; trials whose metric falls behind the median are stopped
//! (`teach::search`). The study directory keeps each finished trial's
//! `trial.json`, so running the same command again continues the study.

use super::cmdline::CmdLine;
use super::say;
use crate::diag::Diagnostic;
use crate::runtime::history::{column, from_jsonl};
use crate::teach::overrides::Override;
use crate::teach::search::{self, Axis, Config, SpaceError, Status, TrialResult};
use clap::{Args, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct TuneArgs {
    pub file: PathBuf,
    /// A grid axis: `lr=0.1,0.01,0.001`, `lr=log:1e-4..1e-1/4` (4 points) or a named size, `hidden=64,128,256`.
    #[arg(long, value_name = "NAME=VALUES")]
    pub grid: Vec<String>,
    /// A random axis: `lr=log:1e-4..1e-1` (log-uniform), `dropout=0..0.5`, `batch_size=16,32,64`.
    #[arg(long, value_name = "NAME=SPEC")]
    pub random: Vec<String>,
    /// Random draws (times the grid's points).
    #[arg(long, default_value_t = 8)]
    pub trials: usize,
    /// Trials run at once [default: the number of cores].
    #[arg(long)]
    pub jobs: Option<usize>,
    /// What to optimise: `val_loss`, `val_accuracy`, `train_loss`, ... [default: val_loss, or train_loss without validation]
    #[arg(long)]
    pub metric: Option<String>,
    #[arg(long, value_enum, default_value_t = Prune::Median)]
    pub prune: Prune,
    /// The study directory [default: runs/<model>-tune].
    #[arg(long)]
    pub study: Option<PathBuf>,
    /// Only the training run of this model.
    #[arg(long)]
    pub model: Option<String>,
    /// Epochs per trial instead of the file's.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Train each trial on at most this many samples.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Seed of the random draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where relative dataset paths are also looked up (also NNC_DATA).
    #[arg(long, env = "NNC_DATA")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Prune {
    /// Stop a trial whose best metric so far is worse than the median of the others at that epoch.
    Median,
    None,
}

fn space_error(cmd: &CmdLine, e: &SpaceError) -> i32 {
    let mut d = Diagnostic::error("E0802", e.message.clone(), cmd.span_of(&e.at), "this search space");
    if let Some(h) = &e.help {
        d = d.with_help(h.clone());
    }
    cmd.fail(d)
}

/// `nnc run` arguments shared by every trial and the command to reproduce one.
fn run_args(args: &TuneArgs, config: &Config) -> Vec<String> {
    let mut out = vec!["run".to_string(), args.file.display().to_string()];
    for (n, v) in config {
        out.push("--set".into());
        out.push(format!("{n}={v}"));
    }
    if let Some(e) = args.epochs {
        out.extend(["--epochs".into(), e.to_string()]);
    }
    if let Some(l) = args.limit {
        out.extend(["--limit".into(), l.to_string()]);
    }
    if let Some(d) = &args.data_dir {
        out.extend(["--data-dir".into(), d.display().to_string()]);
    }
    out
}

fn trial_dir(study: &Path, trial: usize) -> PathBuf {
    study.join(format!("trial-{trial:03}"))
}

/// The metric per epoch of a trial, from its `metrics.jsonl` (empty until
/// its first epoch ends).
fn history(dir: &Path, metric: &str) -> Vec<f64> {
    let Ok(text) = std::fs::read_to_string(dir.join("metrics.jsonl")) else {
        return vec![];
    };
    from_jsonl(&text)
        .map(|h| h.iter().map(|r| column(r, metric).unwrap_or(f64::NAN)).collect())
        .unwrap_or_default()
}

fn read_result(dir: &Path, trial: usize) -> Option<TrialResult> {
    let text = std::fs::read_to_string(dir.join("trial.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let config = v["config"]
        .as_array()?
        .iter()
        .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
        .collect();
    Some(TrialResult {
        trial,
        config,
        status: Status::parse(v["status"].as_str()?)?,
        metric: v["metric"].as_f64(),
        epochs: v["epochs"].as_u64()? as usize,
        seconds: v["seconds"].as_f64()?,
    })
}

fn write_result(dir: &Path, r: &TrialResult, command: &str) -> std::io::Result<()> {
    let v = serde_json::json!({
        "trial": r.trial,
        "config": r.config,
        "status": r.status.as_str(),
        "metric": r.metric,
        "epochs": r.epochs,
        "seconds": r.seconds,
        "command": command,
    });
    let tmp = dir.join("trial.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&v).unwrap_or_default())?;
    std::fs::rename(tmp, dir.join("trial.json"))
}

struct Running {
    trial: usize,
    config: Config,
    child: Child,
    started: Instant,
    pruned: bool,
}

pub fn tune(args: &TuneArgs) -> i32 {
    let cmd = CmdLine::from_env();
    let Some(c) = super::report::load_checked(&args.file, args.data_dir.as_deref()) else {
        return 1;
    };
    let plans = match super::select_plans(&c, args.model.as_deref(), &cmd) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if plans.len() > 1 {
        let runs: Vec<&str> = plans.iter().map(|p| p.model.as_str()).collect();
        let d = Diagnostic::error(
            "E0801",
            format!("{} has {} training runs; name the one to tune", args.file.display(), plans.len()),
            cmd.span_of(&args.file.display().to_string()),
            "several train blocks",
        )
        .with_help(format!("add `--model {}`", runs[0]));
        return cmd.fail(d);
    }
    let plan = plans[0];

    // ---- the space --------------------------------------------------------
    let mut axes: Vec<Axis> = vec![];
    for (texts, grid) in [(&args.grid, true), (&args.random, false)] {
        for t in texts {
            match search::parse_axis(t, grid) {
                Ok(a) => axes.push(a),
                Err(e) => return space_error(&cmd, &e),
            }
        }
    }
    let mut random_trials = args.trials;
    // Without axes on the command line, the train block's `search = space(...)`.
    if axes.is_empty() {
        match search::from_train_block(&c.module, &plan.model) {
            Ok(Some(space)) => {
                axes = space.axes;
                random_trials = space.trials.unwrap_or(args.trials);
            }
            Ok(None) => {}
            Err(e) => {
                let mut d = Diagnostic::error("E0802", e.message, e.span, "this search space");
                if let Some(h) = e.help {
                    d = d.with_help(h);
                }
                eprintln!("{}", crate::diag::render_plain(&d, &c.db));
                return 1;
            }
        }
    }
    let known = crate::teach::overrides::tunable(&c.module, &c.analysis.globals, Some(&plan.model));
    let integers = crate::teach::overrides::integer_names(&c.module);
    if let Err(e) = search::check_space(&mut axes, &known, &integers) {
        // An axis of the train block: the error goes on the file.
        if let Some(span) = axes.iter().find(|a| a.text == e.at || a.name == e.at).and_then(|a| a.span) {
            let message = if e.message.is_empty() {
                format!(
                    "`{}` is not a setting of `train {}`, a parameter of its optimizer or a named size",
                    e.at, plan.model
                )
            } else {
                e.message.clone()
            };
            let code = if e.message.is_empty() { "E0801" } else { "E0802" };
            let mut d = Diagnostic::error(code, message, span, "in this search space");
            if e.message.is_empty() {
                let known: Vec<&str> = known.iter().map(String::as_str).collect();
                if let Some(s) = crate::diag::suggest(&e.at, known) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
            } else if let Some(h) = &e.help {
                d = d.with_help(h.clone());
            }
            eprintln!("{}", crate::diag::render_plain(&d, &c.db));
            return 1;
        }
        if e.message.is_empty() {
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            return cmd.unknown(
                "E0801",
                format!(
                    "`{}` is not a setting of `train {}`, a parameter of its optimizer or a named size",
                    e.at, plan.model
                ),
                &e.at,
                "no such hyper-parameter",
                &known,
            );
        }
        return space_error(&cmd, &e);
    }
    if random_trials == 0 && axes.iter().any(|a| !a.grid) {
        return space_error(
            &cmd,
            &SpaceError {
                at: "--trials".into(),
                message: "random axes need at least one trial".into(),
                help: Some("e.g. `--trials 8`".into()),
            },
        );
    }

    // ---- the metric -------------------------------------------------------
    let has_val = plan.settings.validation > 0.0;
    let metric = args
        .metric
        .clone()
        .unwrap_or_else(|| if has_val { "val_loss" } else { "train_loss" }.into());
    let mut metrics: Vec<String> = vec!["loss".into()];
    metrics.push("accuracy".into());
    for m in &plan.settings.metrics {
        if !metrics.contains(m) {
            metrics.push(m.clone());
        }
    }
    let mut columns: Vec<String> = metrics.iter().map(|m| format!("train_{m}")).collect();
    if has_val {
        columns.extend(metrics.iter().map(|m| format!("val_{m}")));
    }
    if !columns.contains(&metric) {
        let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
        return cmd.unknown(
            "E0801",
            format!("`{metric}` is not a metric of `train {}`", plan.model),
            &metric,
            "no such metric",
            &cols,
        );
    }
    let higher = search::higher_is_better(&metric);

    // Every trial's file must check before any runs: a width that the next
    // layer does not fit is the shape checker's error now, not a failed
    // trial later.
    let configs = search::trials(&axes, random_trials, args.seed);
    let mut seen: Vec<&Config> = vec![];
    for config in &configs {
        if seen.contains(&config) {
            continue;
        }
        seen.push(config);
        let set: Vec<Override> = config
            .iter()
            .map(|(name, value)| Override {
                name: name.clone(),
                value: value.clone(),
            })
            .collect();
        match super::overrides::compile_with(&args.file, &c, &set) {
            Ok(edited) if edited.has_errors() => {
                super::report(&edited);
                return 1;
            }
            Ok(_) => {}
            Err(e) => return super::overrides::fail(&cmd, &e, &args.file),
        }
    }

    // ---- the study directory ---------------------------------------------
    let study = args
        .study
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("{}-tune", plan.model)));
    if let Err(e) = std::fs::create_dir_all(&study) {
        eprintln!("error: cannot create the study directory {}: {e}", study.display());
        return 1;
    }
    let space_text: Vec<String> = axes
        .iter()
        .map(|a| format!("{}{}", if a.grid { "grid " } else { "random " }, a.text))
        .collect();
    let spec = serde_json::json!({
        "file": args.file.display().to_string(),
        "space": space_text,
        "trials": random_trials,
        "seed": args.seed,
        "metric": metric,
        "epochs": args.epochs,
        "limit": args.limit,
    });
    let spec_path = study.join("study.json");
    match std::fs::read_to_string(&spec_path) {
        Ok(old) if serde_json::from_str::<serde_json::Value>(&old).ok().as_ref() != Some(&spec) => {
            let d = Diagnostic::error(
                "E0802",
                format!("the study in {} was started with another search space or settings", study.display()),
                cmd.span_of("--"),
                "this search differs",
            )
            .with_note(format!("its study.json says: {}", old.trim()))
            .with_help("repeat the original command to continue it, or pass `--study` a new directory");
            return cmd.fail(d);
        }
        Ok(_) => {}
        Err(_) => {
            if let Err(e) = std::fs::write(&spec_path, serde_json::to_string_pretty(&spec).unwrap_or_default()) {
                eprintln!("error: cannot write {}: {e}", spec_path.display());
                return 1;
            }
        }
    }

    let mut results: Vec<TrialResult> = vec![];
    let mut pending: Vec<(usize, Config)> = vec![];
    for (i, config) in configs.iter().enumerate() {
        let trial = i + 1;
        match read_result(&trial_dir(&study, trial), trial) {
            Some(r) if r.config == *config => results.push(r),
            _ => pending.push((trial, config.clone())),
        }
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    say!(
        "tuning {} on {metric} ({}): {} trials, {} done before, {} at a time, in {}",
        plan.model,
        if higher { "higher is better" } else { "lower is better" },
        configs.len(),
        results.len(),
        jobs,
        study.display()
    );
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find the nnc executable to run trials: {e}");
            return 1;
        }
    };
    pending.reverse();
    let mut running: Vec<Running> = vec![];
    while !pending.is_empty() || !running.is_empty() {
        while running.len() < jobs {
            let Some((trial, config)) = pending.pop() else { break };
            let dir = trial_dir(&study, trial);
            // A trial without `trial.json` was interrupted: start it afresh.
            let _ = std::fs::remove_dir_all(&dir);
            if let Err(e) = std::fs::create_dir_all(&dir) {
                eprintln!("error: cannot create {}: {e}", dir.display());
                return 1;
            }
            let log = std::fs::File::create(dir.join("log.txt"));
            let mut command = Command::new(&exe);
            command.args(run_args(args, &config));
            command.args([
                "--out".to_string(),
                dir.display().to_string(),
                "--quiet".into(),
                "--threads".into(),
                "1".into(),
            ]);
            match log.and_then(|l| Ok((l.try_clone()?, l))) {
                Ok((out, err)) => command.stdout(Stdio::from(out)).stderr(Stdio::from(err)),
                Err(_) => command.stdout(Stdio::null()).stderr(Stdio::null()),
            };
            match command.spawn() {
                Ok(child) => running.push(Running {
                    trial,
                    config,
                    child,
                    started: Instant::now(),
                    pruned: false,
                }),
                Err(e) => {
                    eprintln!("error: cannot start trial {trial}: {e}");
                    return 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
        // Histories of every trial, for the median rule.
        let finished: Vec<Vec<f64>> = results.iter().map(|r| history(&trial_dir(&study, r.trial), &metric)).collect();
        let mut k = 0;
        while k < running.len() {
            let dir = trial_dir(&study, running[k].trial);
            let h = history(&dir, &metric);
            // A trial in its last epoch is as good as finished.
            let epochs = running[k]
                .config
                .iter()
                .find(|(n, _)| n == "epochs")
                .and_then(|(_, v)| v.parse().ok())
                .or(args.epochs)
                .unwrap_or(plan.settings.epochs);
            if args.prune == Prune::Median && !running[k].pruned && h.len() < epochs {
                let mut others = finished.clone();
                others.extend(
                    running
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != k)
                        .map(|(_, r)| history(&trial_dir(&study, r.trial), &metric)),
                );
                if search::should_prune(&h, &others, h.len(), higher) {
                    let _ = running[k].child.kill();
                    running[k].pruned = true;
                }
            }
            let done = match running[k].child.try_wait() {
                Ok(Some(status)) => Some(status.success()),
                Ok(None) => None,
                Err(_) => Some(false),
            };
            let Some(ok) = done else {
                k += 1;
                continue;
            };
            let r = running.swap_remove(k);
            let h = history(&dir, &metric);
            let status = if r.pruned {
                Status::Pruned
            } else if ok {
                Status::Complete
            } else {
                Status::Failed
            };
            let result = TrialResult {
                trial: r.trial,
                config: r.config.clone(),
                status,
                metric: search::best_so_far(&h, h.len(), higher),
                epochs: h.len(),
                seconds: r.started.elapsed().as_secs_f64(),
            };
            let command = format!("nnc {}", run_args(args, &r.config).join(" "));
            if let Err(e) = write_result(&dir, &result, &command) {
                eprintln!("error: cannot record trial {}: {e}", r.trial);
            }
            let values: Vec<String> = r.config.iter().map(|(n, v)| format!("{n}={v}")).collect();
            let m = result.metric.map_or("-".into(), |m| format!("{m:.4}"));
            let why = if status == Status::Failed {
                format!(" (see {})", dir.join("log.txt").display())
            } else {
                String::new()
            };
            say!(
                "trial {:>3}/{}  {}  {metric} {m}  {} epochs  {:.1} s  {}{why}",
                r.trial,
                configs.len(),
                values.join(" "),
                result.epochs,
                result.seconds,
                status.as_str()
            );
            results.push(result);
        }
    }
    report(args, &study, &axes, &results, &metric, higher)
}

/// The results CSV, the sorted table, the plot, the best trial and its command.
fn report(args: &TuneArgs, study: &Path, axes: &[Axis], results: &[TrialResult], metric: &str, higher: bool) -> i32 {
    let csv = study.join("results.csv");
    if let Err(e) = std::fs::write(&csv, search::to_csv(results, axes, metric)) {
        eprintln!("error: cannot write {}: {e}", csv.display());
        return 1;
    }
    let panels: Vec<crate::teach::plot::Scatter> = axes
        .iter()
        .map(|a| crate::teach::plot::Scatter {
            x_name: a.name.clone(),
            log_x: a.is_log(),
            points: results
                .iter()
                .filter_map(|r| {
                    let v = r.config.iter().find(|(n, _)| n == &a.name)?.1.parse::<f64>().ok()?;
                    Some((v, r.metric?, r.status != Status::Complete))
                })
                .collect(),
        })
        .collect();
    let svg = study.join("tune.svg");
    if let Err(e) = crate::teach::plot::write_scatters(&svg, &panels, metric) {
        eprintln!("error: cannot draw the study: {e}");
    }
    say!("\n{}", search::table(results, axes, metric, higher).trim_end());
    say!("\nresults: {}  plot: {}", csv.display(), svg.display());
    let ranked = search::ranked(results, higher);
    match ranked.first().filter(|r| r.status == Status::Complete) {
        Some(best) => {
            let values: Vec<String> = best.config.iter().map(|(n, v)| format!("{n}={v}")).collect();
            say!(
                "best: trial {} with {}: {metric} {:.4}",
                best.trial,
                values.join(" "),
                best.metric.unwrap_or(f64::NAN)
            );
            say!("reproduce: nnc {}", run_args(args, &best.config).join(" "));
            0
        }
        None => {
            eprintln!("error: no trial completed (see the log.txt of each trial in {})", study.display());
            1
        }
    }
}
