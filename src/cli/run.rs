//! `nnc run`: train with a progress bar and a line per epoch, write the
//! run's artifacts (weights, metrics, learning curves) after every epoch,
//! then report on the test set.

use super::report::{self, Engine};
use super::say;
use crate::plan::TrainPlan;
use crate::runtime::checkpoint::LoadError;
use crate::runtime::split::Standardizer;
use crate::runtime::train::{self, BatchProgress, EpochReport, Observer, TrainOptions, Weights};
use crate::runtime::{checkpoint, curves, history, images, load};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

#[derive(Args)]
pub struct RunArgs {
    pub file: PathBuf,
    /// Where relative dataset paths are also looked up (also NNC_DATA).
    #[arg(long, env = "NNC_DATA")]
    pub data_dir: Option<PathBuf>,
    /// Print only the final report.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub engine: Engine,
    /// Directory for weights, metrics and curves [default: runs/<model>-<timestamp>]
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run saved in this directory (weights, optimizer state, epoch).
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Train on at most this many samples (a quick run).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Train for this many epochs instead of the file's `epochs`.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Set a train setting, optimizer parameter or a model's named size (`let hidden = 128`): `--set lr=0.01 --set hidden=256`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
}

/// `2026-11-23T20:31:05Z` → `20261123-203105`, in UTC, from the system clock
/// (days to a civil date after Howard Hinnant's algorithm).
fn timestamp() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Prints progress and writes the artifacts after every epoch.
struct Progress<'a> {
    plan: &'a TrainPlan,
    backend: crate::runtime::backend::BackendKind,
    standardizer: Option<&'a Standardizer>,
    out: PathBuf,
    quiet: bool,
    tty: bool,
    bar: Option<ProgressBar>,
    started: Instant,
    /// The history before this process started (a resumed run).
    history: Vec<EpochReport>,
}

impl Progress<'_> {
    fn write_artifacts(&self, w: &Weights) -> Result<(), String> {
        checkpoint::save(&self.out.join("weights.safetensors"), self.plan, w, self.standardizer)?;
        let write = |name: &str, text: String| {
            let p = self.out.join(name);
            checkpoint::write_atomic(&p, text.as_bytes())
        };
        write("metrics.csv", history::to_csv(&self.history))?;
        write("metrics.jsonl", history::to_jsonl(&self.history))?;
        if let Some(x) = train::sample(self.plan, self.backend, w)? {
            // The latest grid, one per epoch, and every sample as IDX.
            let grid = self.out.join("samples.png");
            images::write_grid(&grid, &x, 10, 2)?;
            std::fs::copy(&grid, self.out.join(format!("samples-epoch{:03}.png", w.epoch)))
                .map_err(|e| format!("{}: {e}", self.out.display()))?;
            checkpoint::write_atomic(&self.out.join("samples.idx"), &images::idx_bytes(&x)?)?;
        }
        if self.history.is_empty() {
            return Ok(());
        }
        curves::write(&self.out, &self.history, &self.plan.model)
    }
}

impl Observer for Progress<'_> {
    fn best(&mut self, w: &Weights) -> Result<(), String> {
        checkpoint::save(&self.out.join(BEST), self.plan, w, self.standardizer)
    }

    fn batch(&mut self, p: &BatchProgress) {
        // Not a terminal (a log, CI, a pipe): only the line per epoch, no
        // progress fragments.
        if self.quiet || !self.tty {
            return;
        }
        if p.batch == 1 {
            self.started = Instant::now();
            if self.tty {
                let bar = ProgressBar::with_draw_target(Some(p.batches as u64), ProgressDrawTarget::stdout());
                let style = ProgressStyle::with_template("epoch {prefix}  [{bar:30.cyan/blue}] {pos}/{len}  {msg}  eta {eta}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> ");
                bar.set_style(style);
                bar.set_prefix(format!("{}/{}", p.epoch, p.epochs));
                self.bar = Some(bar);
            }
        }
        let rate = p.samples as f64 / self.started.elapsed().as_secs_f64().max(1e-9);
        let msg = format!("loss {:.4}  {:.0} samples/s", p.running_loss, rate);
        if let Some(bar) = &self.bar {
            bar.set_position(p.batch as u64);
            bar.set_message(msg);
        }
    }

    fn validation(&mut self, done: usize, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("validating {done}/{total}"));
        }
    }

    fn epoch(&mut self, r: &EpochReport, w: &Weights) -> Result<(), String> {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if !self.quiet {
            let val = r
                .validation
                .as_ref()
                .map(|v| format!("  | val {}", report::scores_line(v)))
                .unwrap_or_default();
            say!(
                "epoch {:>2}/{}  {}{}  lr {:.3e}  ({:.1}s)",
                r.epoch,
                r.epochs,
                report::scores_line(&r.train),
                val,
                r.lr,
                r.seconds
            );
        }
        self.history.push(r.clone());
        self.write_artifacts(w)
    }
}

/// A name per `train` block, unique in the file: the model's name, with
/// `-2`, `-3`, ... for a model trained by several blocks.
fn run_names(plans: &[TrainPlan]) -> Vec<String> {
    plans
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let same = plans.iter().filter(|q| q.model == p.model).count();
            let nth = plans[..i].iter().filter(|q| q.model == p.model).count();
            if same > 1 && nth > 0 {
                format!("{}-{}", p.model, nth + 1)
            } else {
                p.model.clone()
            }
        })
        .collect()
}

/// Where a block's files go: `--out`, the resumed directory, or a new
/// `runs/<model>-<timestamp>`; with several `train` blocks, one
/// subdirectory per block (`runs/<file>-<timestamp>/<name>`).
fn out_dir(args: &RunArgs, name: &str, several: bool, stamp: &str) -> PathBuf {
    let dir = match (&args.out, &args.resume) {
        (Some(o), _) => o.clone(),
        (None, Some(r)) => r.clone(),
        (None, None) if several => {
            let stem = args.file.file_stem().map_or("run".into(), |s| s.to_string_lossy().into_owned());
            PathBuf::from("runs").join(format!("{stem}-{stamp}"))
        }
        (None, None) => return PathBuf::from("runs").join(format!("{name}-{stamp}")),
    };
    if several {
        dir.join(name)
    } else {
        dir
    }
}

/// The weights of the best epoch so far, when the `train` block has
/// `early_stop` (a resumed run that stops early returns them).
const BEST: &str = "best.safetensors";

/// Weights and history saved in `dir` by an earlier run of `plan`, and the
/// best epoch's weights when early stopping saved them.
type Resumed = ((Weights, Vec<EpochReport>), Option<Weights>);

fn resume_from(dir: &Path, plan: &TrainPlan) -> Result<Resumed, LoadError> {
    let fresh = train::initial_weights(plan).map_err(|e| LoadError {
        code: "E0501",
        message: format!("initialising `{}`: {e}", plan.model),
    })?;
    let w = checkpoint::load(&dir.join("weights.safetensors"), plan, &fresh)?;
    let best_path = dir.join(BEST);
    let best = if best_path.exists() {
        Some(checkpoint::load(&best_path, plan, &fresh)?)
    } else {
        None
    };
    let path = dir.join("metrics.jsonl");
    let mut h = match std::fs::read_to_string(&path) {
        Ok(text) => history::from_jsonl(&text).map_err(|e| LoadError {
            code: "E0607",
            message: format!("{}: {e}", path.display()),
        })?,
        Err(_) => vec![],
    };
    h.truncate(w.epoch);
    Ok(((w, h), best))
}

pub fn run(args: &RunArgs) -> i32 {
    let Some(c) = super::overrides::load_checked(&args.file, args.data_dir.as_deref(), &args.set) else {
        return 1;
    };
    let backend = args.engine.kind();
    let base = report::base_dir(&args.file);
    let several = c.analysis.plans.len() > 1;
    let names = run_names(&c.analysis.plans);
    let stamp = timestamp();
    let stop = super::interrupt::install();
    for (plan, run_name) in c.analysis.plans.iter().zip(&names) {
        let splits = match load::load_splits(plan, &base, args.data_dir.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error[{}]: cannot read the data of `train {}`: {e}", e.code, plan.model);
                return 1;
            }
        };
        let out = out_dir(args, run_name, several, &stamp);
        if let Err(e) = std::fs::create_dir_all(&out) {
            eprintln!("error: cannot create {}: {e}", out.display());
            return 1;
        }
        let mut opts = TrainOptions::new(backend);
        opts.limit = args.limit;
        opts.epochs = args.epochs;
        opts.stop = Some(stop.clone());
        if let Some(dir) = &args.resume {
            let dir = if several { dir.join(run_name) } else { dir.clone() };
            match resume_from(&dir, plan) {
                Ok((r, best)) => {
                    opts.resume = Some(r);
                    opts.resume_best = best;
                }
                Err(e) => {
                    eprintln!("error[{}]: cannot resume from {}: {}", e.code, dir.display(), e.message);
                    return 1;
                }
            }
        }
        let start_epoch = opts.resume.as_ref().map_or(0, |r| r.0.epoch);
        let start_step = opts.resume.as_ref().map_or(0, |r| r.0.step);
        if !args.quiet {
            let v = splits.validation.as_ref().map_or(0, |d| d.len());
            let t = splits.test.as_ref().map_or(0, |d| d.len());
            let n = args.limit.map_or(splits.train.len(), |l| l.min(splits.train.len()));
            let resumed = if start_epoch > 0 || start_step > 0 {
                format!(", resuming after epoch {start_epoch} (step {start_step})")
            } else {
                String::new()
            };
            say!(
                "training {} on {n} samples ({v} validation, {t} test), {} epochs, batch {}, {}{resumed}",
                plan.model,
                args.epochs.unwrap_or(plan.settings.epochs),
                plan.settings.batch_size,
                plan.optimizer()
            );
            say!("writing weights, metrics and curves to {}", out.display());
        }
        let mut obs = Progress {
            plan,
            backend,
            standardizer: splits.standardizer.as_ref(),
            out: out.clone(),
            quiet: args.quiet,
            tty: std::io::stdout().is_terminal(),
            bar: None,
            started: Instant::now(),
            history: opts.resume.as_ref().map(|r| r.1.clone()).unwrap_or_default(),
        };
        let outcome = match train::train_with(plan, &splits, &opts, &mut obs) {
            Ok(o) => o,
            Err(e) => {
                eprintln!("error: training {} failed: {e}", plan.model);
                return 1;
            }
        };
        if let Some(msg) = &outcome.diverged {
            eprintln!("error: training {} stopped: {msg}", plan.model);
            // "Kept" means on disk: a loss that diverges in the first epoch
            // has had no epoch's weights written yet.
            let path = out.join("weights.safetensors");
            match checkpoint::save(&path, plan, &outcome.weights, splits.standardizer.as_ref()) {
                Ok(()) => eprintln!("the last finite weights are in {}", path.display()),
                Err(e) => eprintln!("error: {e}"),
            }
            return 1;
        }
        if outcome.interrupted {
            let w = &outcome.weights;
            if let Err(e) = obs.write_artifacts(w) {
                eprintln!("error: interrupted, and saving the last step failed: {e}");
                return 1;
            }
            let file = args.file.display();
            eprintln!(
                "interrupted: saved the weights after step {} (epoch {} of {} complete) to {}",
                w.step,
                w.epoch,
                args.epochs.unwrap_or(plan.settings.epochs),
                out.join("weights.safetensors").display()
            );
            let out_arg = if several { out.parent().unwrap_or(&out) } else { &out };
            eprintln!("continue with: nnc run {file} --resume {}", out_arg.display());
            return 130;
        }
        if let Some(msg) = &outcome.stopped_early {
            say!("early stop: {msg}");
            // The kept (best) weights are the run's result.
            if let Err(e) = checkpoint::save(
                &out.join("weights.safetensors"),
                plan,
                &outcome.weights,
                splits.standardizer.as_ref(),
            ) {
                eprintln!("error: {e}");
                return 1;
            }
        }
        if plan.eval.is_none() {
            // A block of steps with no model to evaluate (a GAN): its
            // result is the weights and the samples written each epoch.
            continue;
        }
        let (name, data) = match &splits.test {
            Some(t) => ("test", t),
            None => ("training", &splits.train),
        };
        match report::final_report(plan, backend, &outcome.weights, name, data) {
            Ok(vals) => {
                let text = crate::runtime::history::object(&vals) + "\n";
                if let Err(e) = checkpoint::write_atomic(&out.join(format!("{name}.json")), text.as_bytes()) {
                    eprintln!("error: {e}");
                    return 1;
                }
            }
            Err(e) => {
                eprintln!("error: evaluating {} failed: {e}", plan.model);
                return 1;
            }
        }
    }
    0
}
