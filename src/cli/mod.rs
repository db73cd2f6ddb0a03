//! The command line: parses arguments, reads files, prints. The only module
//! besides `lsp` that touches files, stdout or the process.

mod bench;
mod cmdline;
mod eval;
mod explain_grad;
mod export;
mod fmt;
mod fuzz;
mod interrupt;
mod lsp;
mod overrides;
mod plot;
mod predict;
mod report;
mod run;
mod sample;
mod summary;
mod trace;
mod tune;

use crate::diag;
use crate::driver::{self, Compilation};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(name = "nnc", version, about = "A compiler for neural networks written as .nn files")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check files for syntax, name and shape errors.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `json`: one JSON document on stdout with every diagnostic (code,
        /// severity, message, spans with line/column and byte offsets,
        /// notes, fixes as edits).
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Train the model as the file's `train` block says, then evaluate it.
    Run(run::RunArgs),
    /// Print a stage of the compiler's output.
    Ir {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = Stage::Ir)]
        stage: Stage,
    },
    /// Evaluate saved weights on the test split.
    Eval(eval::EvalArgs),
    /// Predict classes for new samples with saved weights.
    Predict(predict::PredictArgs),
    /// Text from a trained character model: continue a prompt one character at a time.
    Sample(sample::SampleArgs),
    /// Each model's layers, output shapes, parameters and FLOPs.
    Summary { file: PathBuf },
    /// Explain a diagnostic code (`nnc explain E0301`), or the backward pass of
    /// a file's training as equations (`nnc explain --grad FILE`).
    Explain(explain_grad::ExplainArgs),
    /// Format files in place (`--check`: only list the ones that would change).
    Fmt(fmt::FmtArgs),
    /// Run the language server on stdin/stdout (for editors).
    Lsp,
    /// Write a model for ONNX Runtime (`--onnx`) or as a PyTorch project (`--pytorch`).
    Export(export::ExportArgs),
    /// Time training steps, inference, compilation and an epoch on random data.
    Bench(bench::BenchArgs),
    /// One training step on real data through the interpreter: every value of
    /// the forward pass, the backward pass and the update, and the parameter change.
    Trace(trace::TraceArgs),
    /// Draw functions of one tensor and their derivatives (SVG/PNG), or a
    /// run's learning curves in the terminal (`--run DIR`).
    Plot(plot::PlotArgs),
    /// Search hyper-parameters: grid and random trials, run in parallel, pruned
    /// at the median; re-running continues the study.
    Tune(tune::TuneArgs),
    /// Fuzz nnc with generated and mutated inputs (sources, lsp, data).
    Fuzz(fuzz::FuzzArgs),
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Stage {
    /// The syntax tree.
    Ast,
    /// The type of every expression.
    Typed,
    /// Each model's forward function and each training run's loss.
    Ir,
    /// The whole training step: forward, loss, backward and update.
    Grad,
    /// The training step after simplification, CSE and DCE.
    Opt,
    /// The fused kernels of the compiled training step (at the file's batch size).
    Fused,
    /// The Cranelift IR of the compiled training step.
    Clif,
    /// The machine code of the compiled training step.
    Asm,
}

/// Print to stdout, ignoring a closed pipe (`nnc ir ... | head`).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
pub(crate) use say;

/// Deeply nested source (a sum of 50,000 terms) recurses deeply in the
/// checker; a large stack keeps that an ordinary run instead of a crash.
const STACK_BYTES: usize = 1 << 30;

pub fn main() -> i32 {
    let started = std::time::Instant::now();
    std::thread::Builder::new()
        .stack_size(STACK_BYTES)
        .spawn(move || main_on_big_stack(started))
        .and_then(|h| h.join().map_err(|_| std::io::Error::other("nnc panicked")))
        .unwrap_or_else(|e| {
            eprintln!("error: internal error: {e}");
            101
        })
}

/// `started`: when the process began (for `nnc bench`'s time to first step).
fn main_on_big_stack(started: std::time::Instant) -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::Check { files, format } => check(&files, format),
        Command::Run(args) => run::run(&args),
        Command::Eval(args) => eval::eval(&args),
        Command::Predict(args) => predict::predict(&args),
        Command::Sample(args) => sample::sample(&args),
        Command::Summary { file } => summary::summary(&file),
        Command::Ir { file, stage } => ir(&file, stage),
        Command::Fmt(args) => fmt::fmt(&args),
        Command::Lsp => lsp::lsp(),
        Command::Bench(args) => bench::bench(&args, started),
        Command::Explain(args) => explain_grad::explain(&args),
        Command::Trace(args) => trace::trace(&args),
        Command::Plot(args) => plot::plot(&args),
        Command::Tune(args) => tune::tune(&args),
        Command::Fuzz(args) => fuzz::fuzz(&args),
        Command::Export(args) => export::export(&args),
    }
}

/// Read and check one file; a file that cannot be read is an error message.
pub(crate) fn load(path: &Path) -> Result<Compilation, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("error: cannot read {}: {e}", path.display()))?;
    Ok(load_bytes(path, &bytes))
}

/// Check `bytes` as the contents of `path` (`use` lines and data paths
/// resolve next to it).
pub(crate) fn load_bytes(path: &Path, bytes: &[u8]) -> Compilation {
    driver::compile_bytes_with(&path.display().to_string(), bytes, &resolver_beside(path))
}

/// `use layers` loads `layers.nn` beside the file; `use "a/b.nn"` a path.
fn resolver_beside(path: &Path) -> impl Fn(&str) -> Option<(String, String)> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    move |target: &str| {
        let file = if target.ends_with(".nn") {
            dir.join(target)
        } else {
            dir.join(format!("{}.nn", target.replace('.', "/")))
        };
        std::fs::read_to_string(&file).ok().map(|t| (file.display().to_string(), t))
    }
}

/// `load` then `report`: the compilation, or None after printing why the
/// file cannot be used (unreadable, or with errors).
pub(crate) fn load_clean(path: &Path) -> Option<Compilation> {
    let c = load(path).map_err(|msg| eprintln!("{msg}")).ok()?;
    (report(&c) == 0).then_some(c)
}

/// The training runs a teaching command works on: the one for `model`, or
/// all of them; a coded error (E0801, E0805) when there is none.
pub(crate) fn select_plans<'c>(
    c: &'c Compilation,
    model: Option<&str>,
    cmd: &cmdline::CmdLine,
) -> Result<Vec<&'c crate::sema::TrainPlan>, i32> {
    let plans: Vec<&crate::sema::TrainPlan> = c.analysis.plans.iter().filter(|p| model.is_none_or(|m| p.model == m)).collect();
    if !plans.is_empty() {
        return Ok(plans);
    }
    let runs: Vec<&str> = c.analysis.plans.iter().map(|p| p.model.as_str()).collect();
    Err(explain_grad::no_such_run(cmd, model.unwrap_or_default(), &runs))
}

/// Print diagnostics to stderr; returns the number of errors.
pub(crate) fn report(c: &Compilation) -> usize {
    let color = std::io::stderr().is_terminal();
    let mut errors = 0;
    for d in c.diagnostics() {
        let text = if color {
            diag::render(d, &c.db)
        } else {
            diag::render_plain(d, &c.db)
        };
        eprintln!("{text}");
        errors += usize::from(d.is_error());
    }
    errors
}

/// `nnc check`: each file with its data headers; fixes are shown only
/// when they were checked to work.
fn check(files: &[PathBuf], format: Format) -> i32 {
    let mut errors = 0;
    let data_dir = std::env::var_os("NNC_DATA").map(PathBuf::from);
    let mut reports = vec![];
    for f in files {
        let data = |c: &mut Compilation| report::check_against_data(c, f, data_dir.as_deref());
        match load(f) {
            Ok(mut c) => {
                data(&mut c);
                let recheck = |text: &str| {
                    let mut c2 = recompile(f, text);
                    data(&mut c2);
                    c2
                };
                let fixes: Vec<Vec<diag::Fix>> = c.diagnostics().iter().map(|d| driver::verify_fixes(&c, d, &recheck)).collect();
                errors += c.diagnostics().iter().filter(|d| d.is_error()).count();
                match format {
                    Format::Text => report_with(&c, &fixes),
                    Format::Json => reports.push(serde_json::json!({
                        "file": f.display().to_string(),
                        "diagnostics": c.diagnostics().iter().zip(&fixes).map(|(d, fx)| diag::to_json(d, &c.db, fx)).collect::<Vec<_>>(),
                    })),
                }
            }
            Err(msg) => {
                eprintln!("{msg}");
                errors += 1;
            }
        }
    }
    if format == Format::Json {
        say!("{}", serde_json::json!({ "files": reports, "errors": errors }));
        return i32::from(errors > 0);
    }
    if errors == 0 {
        say!("checked {} file{}: no errors", files.len(), if files.len() == 1 { "" } else { "s" });
        0
    } else {
        eprintln!("{errors} error{} found", if errors == 1 { "" } else { "s" });
        1
    }
}

/// `path` compiled as if its text were `text` (`use` lines resolved beside it).
fn recompile(path: &Path, text: &str) -> Compilation {
    driver::compile_with(&path.display().to_string(), text, &resolver_beside(path))
}

/// Print diagnostics; a help line that proposes a fix is kept only when
/// the fix was checked to work (`fixes[i]` for diagnostic `i`).
fn report_with(c: &Compilation, fixes: &[Vec<diag::Fix>]) {
    let color = std::io::stderr().is_terminal();
    for (d, fx) in c.diagnostics().iter().zip(fixes) {
        let mut d = d.clone();
        if fx.is_empty() && !d.proposed_fixes().is_empty() {
            d.help = None;
        }
        let text = if color {
            diag::render(&d, &c.db)
        } else {
            diag::render_plain(&d, &c.db)
        };
        eprintln!("{text}");
    }
}

fn ir(file: &Path, stage: Stage) -> i32 {
    let c = match load(file) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("{msg}");
            return 1;
        }
    };
    if stage == Stage::Ast {
        say!("{:#?}", c.module);
        return 0;
    }
    if report(&c) > 0 {
        return 1;
    }
    match stage {
        Stage::Ast => {}
        Stage::Typed => {
            let mut types = c.analysis.types.clone();
            types.sort_by_key(|(s, _)| (s.start, std::cmp::Reverse(s.end)));
            types.dedup();
            for (span, ty) in types {
                let (line, col) = c.db.line_col(span.file, span.start as usize);
                let text: String = c.db.text(span).split_whitespace().collect::<Vec<_>>().join(" ");
                say!("{line}:{col}  {text}  : {ty}");
            }
        }
        Stage::Ir => {
            for (_, f) in &c.analysis.model_funcs {
                say!("{}", crate::ir::print_func(f));
            }
            for p in &c.analysis.plans {
                for s in &p.steps {
                    say!("{}", crate::ir::print_func(&s.loss));
                }
            }
        }
        Stage::Grad | Stage::Opt => {
            for p in &c.analysis.plans {
                for k in 0..p.steps.len() {
                    let (f, _) = driver::step_function(p, k);
                    let f = if stage == Stage::Opt { crate::opt::optimize(&f) } else { f };
                    say!("{}", crate::ir::print_func(&f));
                }
            }
        }
        Stage::Fused | Stage::Clif | Stage::Asm => {
            for p in &c.analysis.plans {
                let (f, _) = driver::training_step(p);
                let batch = p.settings.batch_size;
                let f = crate::opt::optimize(&crate::opt::optimize(&f).specialize(&|_| Some(batch)));
                let opts = crate::codegen::Options {
                    asm: stage == Stage::Asm,
                    ..crate::codegen::Options::threads(1)
                };
                let weights = p.params.len() + p.states_per_step()[0];
                match crate::runtime::backend::compile_step(&f, weights, &opts) {
                    Ok((code, _)) => say!(
                        "{}",
                        match stage {
                            Stage::Fused => code.kernels_text(),
                            Stage::Clif => code.clif_text(),
                            _ => code.asm_text(),
                        }
                    ),
                    Err(e) => {
                        eprintln!("error: compiling the training step of {} failed: {e}", p.model);
                        return 1;
                    }
                }
            }
        }
    }
    0
}
