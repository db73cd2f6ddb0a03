//! `nnc plot NAME... [--derivative] [--file FILE] [--out plot.svg]`: functions
//! of one tensor (the stdlib's or the file's) and their derivatives as an
//! image; `nnc plot --run DIR`: a run's learning curves in the terminal.

use super::cmdline::CmdLine;
use super::say;
use crate::diag::Diagnostic;
use crate::sema::scope::Global;
use crate::teach::plot::{self, Curve};
use clap::Args;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct PlotArgs {
    /// Functions to draw: `sigmoid tanh relu`, or a `fn` of `--file`.
    #[arg(required_unless_present = "run")]
    pub functions: Vec<String>,
    /// Also draw each function's derivative (dashed), as autodiff computes it.
    #[arg(long)]
    pub derivative: bool,
    /// A `.nn` file whose functions can be drawn too.
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The x range.
    #[arg(long, default_value_t = -5.0, allow_negative_numbers = true)]
    pub from: f64,
    #[arg(long, default_value_t = 5.0, allow_negative_numbers = true)]
    pub to: f64,
    /// The image to write: `.svg`, or `.png`.
    #[arg(long, default_value = "plot.svg")]
    pub out: PathBuf,
    /// Draw in the terminal instead of writing an image.
    #[arg(long)]
    pub terminal: bool,
    /// A run directory (`runs/...`): its loss and accuracy per epoch, in the terminal.
    #[arg(long, conflicts_with = "functions")]
    pub run: Option<PathBuf>,
}

const SAMPLES: usize = 401;

pub fn plot(args: &PlotArgs) -> i32 {
    if let Some(dir) = &args.run {
        return run_curves(dir);
    }
    let cmd = CmdLine::from_env();
    if args.from >= args.to || args.from.is_nan() || args.to.is_nan() {
        let d = Diagnostic::error(
            "E0802",
            format!("the x range is empty: --from {} is not below --to {}", args.from, args.to),
            cmd.span_of("--from"),
            "the range starts here",
        );
        return cmd.fail(d);
    }
    let (text, c) = match &args.file {
        Some(f) => {
            let Some(c) = super::load_clean(f) else { return 1 };
            (c.db.file(c.root).text.clone(), c)
        }
        None => (String::new(), crate::driver::compile("<none>", "")),
    };
    let xs = plot::grid(args.from, args.to, SAMPLES);
    let mut curves = vec![];
    for (k, name) in args.functions.iter().enumerate() {
        let f = match lower(&cmd, &c, &text, name) {
            Ok(f) => f,
            Err(code) => return code,
        };
        let ys = match plot::sample(&f, &xs) {
            Ok(y) => y,
            Err(e) => {
                eprintln!("error: evaluating `{name}` failed: {e}");
                return 1;
            }
        };
        curves.push(Curve {
            label: name.clone(),
            points: xs.iter().copied().zip(ys).collect(),
            dashed: false,
            color: k,
        });
        if args.derivative {
            let dys = match plot::sample(&plot::derivative(&f), &xs) {
                Ok(y) => y,
                Err(e) => {
                    eprintln!("error: evaluating the derivative of `{name}` failed: {e}");
                    return 1;
                }
            };
            curves.push(Curve {
                label: format!("{name}'"),
                points: xs.iter().copied().zip(dys).collect(),
                dashed: true,
                color: k,
            });
        }
    }
    let title = if args.derivative {
        format!("{} and derivatives", args.functions.join(", "))
    } else {
        args.functions.join(", ")
    };
    if args.terminal {
        const MARKS: [char; 8] = ['*', 'o', '+', 'x', '#', '@', '%', '&'];
        let series: Vec<plot::CharSeries> = curves
            .iter()
            .enumerate()
            .map(|(i, c)| (c.label.clone(), MARKS[i % MARKS.len()], c.points.clone()))
            .collect();
        say!("{}", plot::terminal_chart(&title, &series, 72, 20).trim_end());
        return 0;
    }
    match plot::write_image(&args.out, &curves, &title) {
        Ok(()) => {
            say!("wrote {}", args.out.display());
            0
        }
        Err(e) => {
            eprintln!("error: cannot write the plot: {e}");
            1
        }
    }
}

/// `name` lowered for one `[n]` input, or a coded error: unknown (E0801),
/// or not a function of one tensor (E0804).
fn lower(cmd: &CmdLine, c: &crate::driver::Compilation, text: &str, name: &str) -> Result<crate::ir::Func, i32> {
    let not_plottable = |why: String, help: &str| {
        let d = Diagnostic::error(
            "E0804",
            format!("`{name}` cannot be plotted: {why}"),
            cmd.span_of(name),
            "not a function of one tensor",
        )
        .with_help(help.to_string());
        cmd.fail(d)
    };
    match c.analysis.globals.get(name) {
        Some(Global::Fn(decl)) => {
            let required = decl.params.iter().filter(|p| p.default.is_none()).count();
            if required != 1 {
                return Err(not_plottable(
                    format!("it takes {required} arguments without defaults"),
                    "plot a function of one tensor, such as an activation: `nnc plot sigmoid tanh relu`",
                ));
            }
        }
        Some(g) => {
            return Err(not_plottable(
                format!("it is a {}", g.kind()),
                "plot a function of one tensor, such as an activation: `nnc plot sigmoid tanh relu`",
            ))
        }
        None if crate::sema::builtin_table::Builtin::from_name(name).is_some() => {}
        None => {
            let mut names: Vec<String> = c
                .analysis
                .globals
                .iter()
                .filter(|(_, g, _)| matches!(g, Global::Fn(_)))
                .map(|(n, _, _)| n.clone())
                .collect();
            names.extend(crate::sema::builtin_table::Builtin::ALL.iter().map(|b| b.name().to_string()));
            names.sort();
            let candidates: Vec<&str> = names.iter().map(String::as_str).collect();
            return Err(cmd.unknown("E0801", format!("unknown function `{name}`"), name, "no such function", &candidates));
        }
    }
    let f = match crate::driver::lower_function(text, name, &[plot::input_type(SAMPLES)]) {
        Ok(f) => f,
        Err(diags) => {
            let why: Vec<String> = diags.iter().map(|d| d.message.clone()).collect();
            return Err(not_plottable(why.join("; "), "a plotted function is called with one tensor `x`"));
        }
    };
    if !plot::is_pointwise(&f) {
        return Err(not_plottable(
            "it does not map each number to one number".into(),
            "softmax-like functions mix a row's entries; plot elementwise functions",
        ));
    }
    Ok(f)
}

/// Loss and accuracy per epoch from `DIR/metrics.jsonl`, as characters.
fn run_curves(dir: &Path) -> i32 {
    let path = dir.join("metrics.jsonl");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!(
                "error: cannot read {}: {e} (is {} a run directory of `nnc run`?)",
                path.display(),
                dir.display()
            );
            return 1;
        }
    };
    let history = match crate::runtime::history::from_jsonl(&text) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            return 1;
        }
    };
    for metric in ["loss", "accuracy"] {
        let series: Vec<plot::CharSeries> = [("train", '*'), ("validation", 'o')]
            .into_iter()
            .map(|(split, mark)| {
                let col = if split == "train" {
                    format!("train_{metric}")
                } else {
                    format!("val_{metric}")
                };
                let pts = history
                    .iter()
                    .filter_map(|r| crate::runtime::history::column(r, &col).map(|v| (r.epoch as f64, v)))
                    .collect::<Vec<_>>();
                (split.to_string(), mark, pts)
            })
            .filter(|s| !s.2.is_empty())
            .collect();
        if series.is_empty() {
            continue;
        }
        say!(
            "{}\n",
            plot::terminal_chart(&format!("{metric} per epoch"), &series, 60, 14).trim_end()
        );
    }
    0
}
