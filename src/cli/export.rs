//! `nnc export FILE --onnx OUT.onnx` / `--pytorch DIR`: write a model (with
//! its trained or initial weights) for ONNX Runtime or as a PyTorch project.
//! Everything is built in memory first and written through temporary
//! files and renames, so a failure leaves nothing half-written.

use super::report;
use super::say;
use crate::diag::Diagnostic;
use crate::driver::Compilation;
use crate::export::{self, Unsupported};
use crate::runtime::checkpoint;
use crate::runtime::split::Standardizer;
use crate::runtime::train::{self, Weights};
use crate::sema::value::LayerRecord;
use crate::sema::TrainPlan;
use clap::Args;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

#[derive(Args)]
#[command(group(clap::ArgGroup::new("format").required(true).args(["onnx", "pytorch"])))]
pub struct ExportArgs {
    pub file: PathBuf,
    /// Write the inference graph (evaluation mode) with its weights to this .onnx file.
    #[arg(long, value_name = "OUT.onnx")]
    pub onnx: Option<PathBuf>,
    /// Write a PyTorch project (model.py, train.py, weights) into this directory.
    #[arg(long, value_name = "DIR")]
    pub pytorch: Option<PathBuf>,
    /// Weights to export (from `nnc run`, or a PyTorch state dict); default: the initial weights.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Which model's `train` block to export, when the file has several.
    #[arg(long)]
    pub model: Option<String>,
}

/// Why an export failed.
enum Failure {
    /// A diagnostic code and a message, printed as `error[CODE]: message`.
    Plain { code: &'static str, message: String },
    /// A diagnostic rendered against the source.
    Rendered(String),
}

fn fail(code: &'static str, message: impl Into<String>) -> Failure {
    debug_assert!(crate::diag::lookup(code).is_some());
    Failure::Plain {
        code,
        message: message.into(),
    }
}

pub fn export(args: &ExportArgs) -> i32 {
    let Some(c) = report::load_checked(&args.file, None) else {
        return 1;
    };
    match export_checked(&c, args) {
        Ok(msg) => {
            say!("{msg}");
            0
        }
        Err(Failure::Plain { code, message }) => {
            eprintln!("error[{code}]: {message}");
            1
        }
        Err(Failure::Rendered(text)) => {
            eprintln!("{text}");
            1
        }
    }
}

/// The plan to export and its weights: those of `--weights`, or the
/// initial weights of the plan chosen by `--model` (default: the first).
fn plan_and_weights<'a>(c: &'a Compilation, args: &ExportArgs) -> Result<(&'a TrainPlan, Weights, Option<Standardizer>), Failure> {
    let plans = &c.analysis.plans;
    let chosen: Vec<&TrainPlan> = match &args.model {
        // A block of steps is chosen by its name or by one of its models (`--model G`).
        Some(m) => plans
            .iter()
            .filter(|p| p.model == *m || (p.eval.is_none() && p.models.iter().any(|pm| pm.name == *m)))
            .collect(),
        None => plans.iter().collect(),
    };
    if chosen.is_empty() {
        let names: Vec<&str> = plans.iter().map(|p| p.model.as_str()).collect();
        return Err(fail(
            "E0101",
            format!(
                "no `train` block for model `{}`; the file trains {}",
                args.model.as_deref().unwrap_or(""),
                names.join(", ")
            ),
        ));
    }
    let Some(path) = &args.weights else {
        let plan = chosen[0];
        let w = train::initial_weights(plan).map_err(|e| fail("E0501", format!("initialising `{}`: {e}", plan.model)))?;
        return Ok((plan, w, None));
    };
    let mut first_err = None;
    for plan in &chosen {
        let fresh = train::initial_weights(plan).map_err(|e| fail("E0501", e))?;
        match checkpoint::load(path, plan, &fresh) {
            Ok(w) => {
                let st = checkpoint::load_standardizer(path).map_err(|e| fail("E0704", e))?;
                return Ok((plan, w, st));
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let e = first_err.expect("at least one plan was chosen");
    Err(fail(e.code, e.message))
}

fn export_checked(c: &Compilation, args: &ExportArgs) -> Result<String, Failure> {
    let (plan, w, st) = plan_and_weights(c, args)?;
    let unsupported = |u: Unsupported| unsupported_diag(c, plan, &u, "ONNX", "E0701");
    if let Some(out) = &args.onnx {
        let bytes = export::onnx::export(plan, args.model.as_deref(), &w, st.as_ref()).map_err(unsupported)?;
        write_file(out, &bytes)?;
        let model = match (&args.model, &plan.eval) {
            (Some(m), _) => m.as_str(),
            (None, Some(_)) => plan.model.as_str(),
            (None, None) => plan.sample_model.as_deref().unwrap_or(&plan.model),
        };
        return Ok(format!(
            "wrote {} (model {}, opset {}, {} bytes)",
            out.display(),
            model,
            export::onnx::OPSET,
            bytes.len()
        ));
    }
    let Some(dir) = &args.pytorch else {
        return Err(fail("E0702", "no export format given"));
    };
    // The layers of the exported model, or of every model of a block of
    // steps, named as the store names them (`G.dense1`).
    let mut layers: Vec<LayerRecord> = vec![];
    for (m, records) in &c.analysis.model_layers {
        if *m == plan.model && plan.eval.is_some() {
            layers.extend(records.iter().cloned());
        } else if plan.eval.is_none() && plan.models.iter().any(|pm| pm.name == *m) {
            layers.extend(records.iter().map(|r| LayerRecord {
                name: format!("{m}.{}", r.name),
                ..r.clone()
            }));
        }
    }
    let is_stdlib = |s: crate::base::Span| c.db.file(s.file).builtin;
    let source_dir = std::fs::canonicalize(report::base_dir(&args.file)).unwrap_or_else(|_| report::base_dir(&args.file));
    let src = export::pytorch::Source {
        globals: &c.analysis.globals,
        layers: &layers,
        is_stdlib: &is_stdlib,
        file_name: args.file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        source_dir: source_dir.display().to_string(),
    };
    let files = export::pytorch::export(&src, plan, &w, st.as_ref()).map_err(|u| unsupported_diag(c, plan, &u, "PyTorch", "E0702"))?;
    write_dir(dir, &files)?;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    Ok(format!("wrote {} (model {}): {}", dir.display(), plan.model, names.join(", ")))
}

/// Write `files` into `dir`: all of them are written into a fresh
/// directory beside it first, which then becomes `dir` (or, when `dir`
/// exists, whose files replace those of the same names), so a failure
/// leaves no partial project behind.
fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<(), Failure> {
    let parent = check_parent(dir)?;
    if dir.exists() && !dir.is_dir() {
        return Err(fail(
            "E0703",
            format!("cannot write {}: it exists and is not a directory", dir.display()),
        ));
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    let staging = parent.join(format!(".{name}.{}.tmp", std::process::id()));
    let cannot = |e: std::io::Error| fail("E0703", format!("cannot write {}: {e}", dir.display()));
    let staged = std::fs::create_dir(&staging).and_then(|()| {
        for (n, bytes) in files {
            std::fs::write(staging.join(n), bytes)?;
        }
        Ok(())
    });
    if let Err(e) = staged {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(cannot(e));
    }
    let moved = if dir.is_dir() {
        files.iter().try_for_each(|(n, _)| std::fs::rename(staging.join(n), dir.join(n)))
    } else {
        std::fs::rename(&staging, dir)
    };
    let _ = std::fs::remove_dir_all(&staging);
    moved.map_err(cannot)
}

/// An op without an equivalent: rendered as a diagnostic at the `train`
/// block whose model uses it.
fn unsupported_diag(c: &Compilation, plan: &TrainPlan, u: &Unsupported, format: &str, code: &'static str) -> Failure {
    let label = match &u.op {
        Some(op) => format!("the model `{}` uses `{op}`", plan.model),
        None => format!("exporting the model `{}`", plan.model),
    };
    // IR ops carry no spans: point at the model's name.
    let span = c.analysis.globals.def_span(&plan.model).unwrap_or(plan.span);
    let d = Diagnostic::error(code, format!("cannot export to {format}: {}", u.message), span, label);
    let rendered = if std::io::stderr().is_terminal() {
        crate::diag::render(&d, &c.db)
    } else {
        crate::diag::render_plain(&d, &c.db)
    };
    Failure::Rendered(rendered)
}

/// The directory `path` will be written into must exist and be writable.
fn check_parent(path: &Path) -> Result<PathBuf, Failure> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(fail(
            "E0703",
            format!("cannot write {}: the directory {} does not exist", path.display(), parent.display()),
        ));
    }
    Ok(parent)
}

/// Write `bytes` to `path` through a temporary file beside it and a
/// rename; on failure the temporary file is removed again.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Failure> {
    check_parent(path)?;
    if path.is_dir() {
        return Err(fail("E0703", format!("cannot write {}: it is a directory", path.display())));
    }
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail("E0703", format!("cannot write {}: {e}", path.display()))
    })
}
