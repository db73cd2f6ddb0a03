//! The pure façade over the pipeline: source in; diagnostics, IR and the
//! compiled training step out. No files, no printing.

use crate::base::{FileId, SourceDb};
use crate::diag::{Diagnostic, Diagnostics};
use crate::sema::{self, Analysis};
use crate::syntax::{self, ast::Module};

/// One checked file with everything derived from it.
pub struct Compilation {
    pub db: SourceDb,
    pub root: FileId,
    pub module: Module,
    /// Whether the root file parsed without syntax errors (so the
    /// formatter, which refuses text that does not, need not parse again).
    pub parses: bool,
    pub analysis: Analysis,
}

impl Compilation {
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.analysis.diags.items
    }
    pub fn has_errors(&self) -> bool {
        self.analysis.diags.has_errors()
    }
}

/// Add the stdlib to `db` (as its first files) and return its modules.
/// The stdlib is parsed once per process and shared read-only by every
/// compilation: each adds the stdlib first, so its file ids, and the spans
/// in the cached syntax trees, always match.
fn load_stdlib(db: &mut SourceDb) -> &'static [(FileId, Module)] {
    static PARSED: std::sync::OnceLock<Vec<(FileId, Module)>> = std::sync::OnceLock::new();
    let parsed = PARSED.get_or_init(|| {
        sema::STDLIB
            .iter()
            .enumerate()
            .map(|(i, (name, text))| {
                let (m, diags) = syntax::parse(FileId(i as u32), text);
                debug_assert!(diags.is_empty(), "stdlib {name} has syntax errors: {diags:?}");
                (FileId(i as u32), m)
            })
            .collect()
    });
    assert!(
        db.files().next().is_none(),
        "internal error: the stdlib must be the first files of a SourceDb"
    );
    for ((name, text), (id, _)) in sema::STDLIB.iter().zip(parsed) {
        let added = db.add(format!("<stdlib>/{name}.nn"), *text, true);
        debug_assert_eq!(added, *id);
    }
    parsed
}

/// Check a file given as raw bytes (non-UTF-8 input is a diagnostic).
pub fn compile_bytes(name: &str, bytes: &[u8]) -> Compilation {
    compile_bytes_with(name, bytes, &|_| None)
}

/// [`compile_bytes`] with a resolver for `use` lines.
pub fn compile_bytes_with(name: &str, bytes: &[u8], resolve: Resolver) -> Compilation {
    match std::str::from_utf8(bytes) {
        Ok(text) => compile_with(name, text, resolve),
        Err(e) => {
            let valid = e.valid_up_to();
            let text = String::from_utf8_lossy(bytes).into_owned();
            let mut c = compile(name, "");
            c.db = SourceDb::new();
            let _ = load_stdlib(&mut c.db);
            // Keep the text (lossily) so the label can point at the byte.
            c.root = c.db.add(name, text.clone(), false);
            let mut diags = Diagnostics::default();
            let at = text.char_indices().map(|(i, _)| i).find(|&i| i >= valid).unwrap_or(text.len());
            let end = text[at..].chars().next().map_or(at, |ch| at + ch.len_utf8());
            diags.push(Diagnostic::error(
                "E0004",
                "the file is not valid UTF-8",
                crate::base::Span::new(c.root, at, end),
                format!("invalid byte at offset {valid}"),
            ));
            c.analysis = Analysis {
                diags,
                ..Default::default()
            };
            c.module = Module::default();
            c.parses = false;
            c
        }
    }
}

/// Parse and check `text`; lower its train blocks. `use` lines can name
/// only stdlib modules (see [`compile_with`] to load files).
pub fn compile(name: &str, text: &str) -> Compilation {
    compile_with(name, text, &|_| None)
}

/// Loads the module a `use` line names: its display name and text.
pub type Resolver<'a> = &'a dyn Fn(&str) -> Option<(String, String)>;

/// Like [`compile`], with `resolve` loading the modules that `use` lines
/// name (one level: their own `use` lines are not followed).
pub fn compile_with(name: &str, text: &str, resolve: Resolver) -> Compilation {
    let mut db = SourceDb::new();
    let stdlib = load_stdlib(&mut db);
    let root = db.add(name, text, false);
    let (module, mut parse_diags) = syntax::parse(root, text);
    let parses = parse_diags.is_empty();
    let mut imported = vec![];
    for item in &module.items {
        if let syntax::ast::Item::Use(u) = item {
            if sema::is_stdlib_module(&u.target) || imported.iter().any(|(t, _, _): &(String, FileId, Module)| *t == u.target) {
                continue;
            }
            if let Some((file_name, file_text)) = resolve(&u.target) {
                let id = db.add(file_name, file_text.clone(), false);
                let (m, d) = syntax::parse(id, &file_text);
                parse_diags.extend(d);
                imported.push((u.target.clone(), id, m));
            }
        }
    }
    let mut analysis = sema::analyze(&db, root, &module, stdlib, &imported);
    for d in check_gradients(&db, &analysis) {
        analysis.diags.push(d);
    }
    if module.items.is_empty() && parse_diags.is_empty() {
        let span = crate::base::Span::new(root, 0, text.len().min(1));
        analysis.diags.push(
            Diagnostic::error("E0003", "the file declares nothing", span, "empty file")
                .with_help("declare a model, e.g. `model Linear(x: [batch, 4]) -> [batch, 3] = x |> Dense(4 -> 3)`"),
        );
    }
    // Syntax errors come first, in source order.
    let mut all = Diagnostics::default();
    for d in parse_diags {
        all.push(d);
    }
    all.extend(std::mem::take(&mut analysis.diags));
    all.items.sort_by_key(|d| (d.primary.span.file != root, d.primary.span.start));
    analysis.diags = all;
    Compilation {
        db,
        root,
        module,
        parses,
        analysis,
    }
}

pub use crate::runtime::step::{step_function, training_step, StepLayout};

/// Check each `train` block's data against the model's input (E0308), with
/// `feature_shape` reading only file headers. A file that cannot be read
/// is not reported here: `nnc run` reports it (E0601) when it needs the data.
pub fn check_data(c: &mut Compilation, feature_shape: &dyn Fn(&sema::DataSource) -> Result<Vec<usize>, crate::runtime::data::DataError>) {
    for plan in &c.analysis.plans {
        let Ok(shape) = feature_shape(&plan.data.source) else { continue };
        let dims = &plan.input.shape[1..];
        let want: Option<usize> = dims.iter().map(|d| d.known()).product();
        let have: usize = shape.iter().product();
        if want.is_some_and(|w| w != have) {
            let d = Diagnostic::error(
                "E0308",
                format!(
                    "the data has samples of shape {shape:?} ({have} values), but `{}` takes {}",
                    plan.model,
                    crate::ir::shape_to_string(&plan.input.shape)
                ),
                plan.data.span,
                format!("each sample here has {have} values"),
            )
            .with_help(format!(
                "declare the input as `x: [batch, {}]`, or point `data =` at a dataset of {} values per sample",
                shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", "),
                want.unwrap_or(0)
            ));
            c.analysis.diags.push(d);
        }
    }
}

/// Lower one function of `text` (or of the stdlib) for concrete argument types.
pub fn lower_function(text: &str, name: &str, args: &[crate::ir::Type]) -> Result<crate::ir::Func, Vec<Diagnostic>> {
    lower(text, name, args, None)
}

/// `lower_function` in training or evaluation mode (what `training` is in
/// `if training { ... }`); random draws take a fixed key.
pub fn lower_function_in_mode(
    text: &str,
    name: &str,
    args: &[crate::ir::Type],
    training: bool,
) -> Result<crate::ir::Func, Vec<Diagnostic>> {
    lower(text, name, args, Some(training))
}

fn lower(text: &str, name: &str, args: &[crate::ir::Type], training: Option<bool>) -> Result<crate::ir::Func, Vec<Diagnostic>> {
    let mut db = SourceDb::new();
    let stdlib = load_stdlib(&mut db);
    let root = db.add("<test>", text, false);
    let (module, parse) = syntax::parse(root, text);
    if !parse.is_empty() {
        return Err(parse);
    }
    sema::lower_function(&db, root, &module, stdlib, name, args, training).map_err(|d| d.items)
}

/// The fixes of `d` that work: each is applied to the root file's text and
/// the result is checked again with `recheck`; a fix is kept only when the
/// changed file no longer has `d` (the same code where `d` started), has
/// fewer errors, and has no error of a kind it did not have before (so a
/// fix never trades one mistake for another).
pub fn verify_fixes(c: &Compilation, d: &Diagnostic, recheck: &dyn Fn(&str) -> Compilation) -> Vec<crate::diag::Fix> {
    let root_text = &c.db.file(c.root).text;
    let kinds = |c: &Compilation| -> Vec<(&'static str, String)> {
        c.diagnostics()
            .iter()
            .filter(|x| x.is_error())
            .map(|x| (x.code, x.message.clone()))
            .collect()
    };
    let before = kinds(c);
    d.proposed_fixes()
        .into_iter()
        .filter(|f| !f.edits.is_empty() && f.edits.iter().all(|e| e.span.file == c.root))
        .filter(|f| {
            let after = recheck(&f.apply(root_text));
            let same = after
                .diagnostics()
                .iter()
                .any(|a| a.code == d.code && a.primary.span.start == d.primary.span.start && a.message == d.message);
            let now = kinds(&after);
            let fewer = if d.is_error() {
                now.len() < before.len()
            } else {
                now.len() <= before.len()
            };
            !same && fewer && now.iter().all(|k| before.contains(k))
        })
        .collect()
}

/// Check each classifier's labels against its model before training
/// (E0602): labels that reach the model's number of outputs (a 5-output
/// model on the 10 digit classes trains and reports plausible numbers),
/// and a label column that holds numbers that are not class ids (a
/// regression target, read with `target:`). `labels` reads only the label
/// column or file; a source that cannot be read is left to `nnc run`.
pub fn check_labels(
    c: &mut Compilation,
    labels: &dyn Fn(&sema::DataSource) -> Result<Option<crate::runtime::data::LabelSummary>, crate::runtime::data::DataError>,
) {
    let mut found = vec![];
    for plan in &c.analysis.plans {
        if plan.label.dtype != crate::ir::DType::I32 {
            continue;
        }
        let summary = match labels(&plan.data.source) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                // An argument's value that the file contradicts (a label
                // column it does not have) is what to change.
                let blamed = e
                    .argument
                    .as_ref()
                    .and_then(|(name, _)| argument_value_span(&c.db, plan.data.span, name));
                let mut d = Diagnostic::error(
                    e.code,
                    // The file by name: the label points at where it is named.
                    format!(
                        "cannot read the {} of `train {}` from `{}`: {}",
                        if e.code == "E0601" { "labels" } else { "data" },
                        plan.model,
                        e.path
                            .file_name()
                            .map_or(e.path.display().to_string(), |n| n.to_string_lossy().into_owned()),
                        e.message
                    ),
                    blamed.unwrap_or(plan.data.span),
                    match (blamed, e.code) {
                        (Some(_), _) => "the file has no such column",
                        (None, "E0601") => "the labels are read from here",
                        _ => "the data is read from here",
                    },
                );
                if let (Some(at), Some((name, Some(value)))) = (blamed, &e.argument) {
                    d = d.with_fix(
                        format!("read the labels from `{name}: {value}`"),
                        crate::diag::Fix::replace(at, value.clone()),
                    );
                }
                found.push(d);
                continue;
            }
        };
        if let Some((place, text)) = &summary.not_a_class {
            // The keyword that says "class ids" is what to change.
            let at = keyword_span(&c.db, plan.data.span, "label").unwrap_or(plan.data.span);
            let mut d = Diagnostic::error(
                "E0602",
                format!("the label column holds `{text}` ({place}), which is not a class id"),
                at,
                "labels are read as class ids here",
            )
            .with_note("class ids are whole numbers from 0; a column of numbers to predict is a regression target");
            if let Some(kw) = keyword_span(&c.db, plan.data.span, "label") {
                d = d.with_fix(
                    "to predict these numbers, read the column with `target:`",
                    crate::diag::Fix::replace(kw, "target"),
                );
            }
            found.push(d);
            continue;
        }
        // A block of steps without a model (a GAN) predicts no classes.
        let Some(predict) = plan.eval.as_ref().map(|ev| &ev.predict) else {
            continue;
        };
        let Some(outputs) = predict
            .results
            .first()
            .and_then(|&v| predict.ty(v).shape.last().and_then(|d| d.known()))
        else {
            continue;
        };
        if summary.classes > outputs {
            let mut d = Diagnostic::error(
                "E0602",
                format!(
                    "the labels go up to {} ({} classes), but `{}` has {outputs} outputs",
                    summary.classes - 1,
                    summary.classes,
                    plan.model
                ),
                plan.data.span,
                format!("labels 0..{} here", summary.classes - 1),
            )
            .with_note(format!(
                "labels {outputs} and above have no output to score them, so the model cannot learn them"
            ));
            if let Some(decl) = plan.output_decl {
                d = d.with_secondary(decl, format!("{outputs} outputs"));
            }
            let edits: Vec<crate::diag::Edit> = plan
                .output_spans
                .iter()
                .map(|&span| crate::diag::Edit {
                    span,
                    replacement: summary.classes.to_string(),
                })
                .collect();
            if !edits.is_empty() {
                d = d.with_fix(
                    format!("give the model {} outputs", summary.classes),
                    crate::diag::Fix {
                        title: format!("Give the model {} outputs", summary.classes),
                        edits,
                    },
                );
            }
            found.push(d);
        }
    }
    for d in found {
        c.analysis.diags.push(d);
    }
}

/// The span of `name` used as a keyword (`name:`) inside `within`.
/// The value of the argument `name: value` inside `within`: from after the
/// colon to the next `,` or `)` outside brackets.
fn argument_value_span(db: &SourceDb, within: crate::base::Span, name: &str) -> Option<crate::base::Span> {
    let kw = keyword_span(db, within, name)?;
    let text = db.text(within);
    let after = (kw.end - within.start) as usize;
    let colon = after + text[after..].find(':')? + 1;
    let rest = &text[colon..];
    let start = colon + (rest.len() - rest.trim_start().len());
    let mut depth = 0i32;
    let mut end = text.len();
    for (i, ch) in text[start..].char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' if depth == 0 => {
                end = start + i;
                break;
            }
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                end = start + i;
                break;
            }
            _ => {}
        }
    }
    let value = text[start..end].trim_end();
    (!value.is_empty()).then(|| {
        let s = within.start as usize + start;
        crate::base::Span::new(within.file, s, s + value.len())
    })
}

fn keyword_span(db: &SourceDb, within: crate::base::Span, name: &str) -> Option<crate::base::Span> {
    let text = db.text(within);
    let mut from = 0;
    while let Some(i) = text[from..].find(name) {
        let at = from + i;
        let before_ok = at == 0 || !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        let rest = text[at + name.len()..].trim_start();
        if before_ok && rest.starts_with(':') {
            let start = within.start as usize + at;
            return Some(crate::base::Span::new(within.file, start, start + name.len()));
        }
        from = at + name.len();
    }
    None
}

/// W0001: a training run that cannot fit in `available` bytes, from the
/// checker's shapes before anything is allocated. The estimate counts the
/// weights, their gradients and optimizer states, and every value of the
/// forward pass and loss at the file's batch size twice (kept for the
/// backward pass, and its gradient).
pub fn check_memory(c: &mut Compilation, available: u64) {
    let mut found = vec![];
    for plan in &c.analysis.plans {
        let batch = plan.settings.batch_size as u128;
        let numel = |t: &crate::ir::Type| {
            t.shape
                .iter()
                .fold(1u128, |n, d| n.saturating_mul(d.known().map_or(batch, |k| k as u128)))
        };
        let params: u128 = plan.params.iter().map(|p| numel(&p.ty)).sum();
        let grads: u128 = plan.params.iter().filter(|p| p.trainable).map(|p| numel(&p.ty)).sum();
        let states: u128 = plan.state_names().map(|(_, t)| numel(t)).sum();
        let weights = 4u128.saturating_mul(params.saturating_add(grads).saturating_add(states));
        // Steps run one after another: the largest one's values count.
        let values: u128 = plan
            .steps
            .iter()
            .map(|s| s.loss.types.iter().map(numel).fold(0u128, u128::saturating_add))
            .max()
            .unwrap_or(0);
        let activations = 8u128.saturating_mul(values);
        let total = weights.saturating_add(activations);
        if total <= u128::from(available) {
            continue;
        }
        // Point at what dominates: the layer with the largest weight, or
        // the largest value written in the file.
        let layers = c
            .analysis
            .model_layers
            .iter()
            .find(|(m, _)| *m == plan.model)
            .map(|(_, l)| l.as_slice())
            .unwrap_or(&[]);
        let heaviest = layers
            .iter()
            .filter(|l| l.span.file == c.root)
            .max_by_key(|l| l.params.iter().map(|(_, t)| numel(t)).sum::<u128>());
        let span = match (heaviest, plan.largest_value) {
            (Some(l), _) if weights >= activations => l.span,
            (_, Some((_, s))) => s,
            (Some(l), None) => l.span,
            (None, None) => plan.span,
        };
        let gib = |b: u128| b as f64 / (1u128 << 30) as f64;
        found.push(
            Diagnostic::error(
                "W0001",
                format!(
                    "training `{}` needs about {:.1} GiB, more than the {:.1} GiB of memory here",
                    plan.model,
                    gib(total),
                    gib(u128::from(available))
                ),
                span,
                if weights >= activations {
                    format!("{:.1} GiB of weights, gradients and optimizer state", gib(weights))
                } else {
                    format!("{:.1} GiB of values at batch size {batch}", gib(activations))
                },
            )
            .with_note(format!(
                "{} parameters; {:.1} GiB for the values of a step at batch size {batch}",
                crate::runtime::summary::thousands(params.min(u128::from(u64::MAX)) as u64),
                gib(activations)
            )),
        );
    }
    for d in found {
        c.analysis.diags.push(d);
    }
}

/// E0403: trained parameters that the loss depends on only through ops
/// whose derivative is zero (a comparison, `step`, `sign`), so training
/// never changes them. One error per blocking place, naming the
/// parameters; found with the differentiation rules themselves.
fn check_gradients(db: &SourceDb, a: &Analysis) -> Vec<Diagnostic> {
    let mut out = vec![];
    for (plan, step) in a.plans.iter().flat_map(|p| p.steps.iter().map(move |s| (p, s))) {
        let f = &step.loss;
        let n = f.types.len();
        let Some(&loss) = f.results.first() else { continue };
        // Only what this step updates must get a gradient from its loss.
        let trained: Vec<usize> = step.updates.iter().map(|u| u.param).collect();
        // Which params each value depends on, through any op and through
        // differentiable operands only.
        let mut any: Vec<Vec<usize>> = vec![vec![]; n];
        let mut diff: Vec<Vec<usize>> = vec![vec![]; n];
        // A step's params are x, y, the random key, then the store.
        for (i, v) in f.params.iter().enumerate().skip(3) {
            any[v.index()].push(i - 3);
            diff[v.index()].push(i - 3);
        }
        for inst in &f.insts {
            let r = inst.result.index();
            let mut a_set: Vec<usize> = inst.args.iter().flat_map(|v| any[v.index()].clone()).collect();
            let mut d_set: Vec<usize> = inst
                .op
                .differentiable_args()
                .iter()
                .flat_map(|&i| diff[inst.args[i].index()].clone())
                .collect();
            a_set.sort_unstable();
            a_set.dedup();
            d_set.sort_unstable();
            d_set.dedup();
            any[r] = a_set;
            diff[r] = d_set;
        }
        let dead: Vec<usize> = any[loss.index()]
            .iter()
            .copied()
            .filter(|p| trained.contains(p) && !diff[loss.index()].contains(p))
            .collect();
        if dead.is_empty() {
            continue;
        }
        // Group the dead params by the first blocker they flow into.
        let mut groups: Vec<(crate::base::Span, Vec<usize>)> = vec![];
        for p in dead {
            let at = step
                .blockers
                .iter()
                .find(|(v, _)| any[v.index()].contains(&p))
                .map_or(plan.span, |(_, s)| *s);
            match groups.iter_mut().find(|(s, _)| *s == at) {
                Some((_, ps)) => ps.push(p),
                None => groups.push((at, vec![p])),
            }
        }
        // No parameter at all gets a gradient: the loss is not
        // differentiable (E0401); some of them: E0403.
        let alive = trained.iter().any(|i| diff[loss.index()].contains(i));
        let code = if alive { "E0403" } else { "E0401" };
        for (at, ps) in groups {
            let names: Vec<String> = ps.iter().map(|&p| format!("`{}`", plan.params[p].name)).collect();
            let mut d = Diagnostic::error(
                code,
                format!(
                    "{} get{} no gradient: the loss depends on {} only through an operation whose derivative is zero",
                    names.join(", "),
                    if names.len() == 1 { "s" } else { "" },
                    if names.len() == 1 { "it" } else { "them" }
                ),
                at,
                "its derivative is zero everywhere",
            )
            .with_note("training would never change these parameters");
            // A threshold passed as an activation: a smooth one learns.
            let written = db.text(at);
            if !written.is_empty() && written.chars().all(|c| c.is_alphanumeric() || c == '_') {
                d = d.with_fix(
                    "use a smooth activation such as `relu`, `tanh` or `sigmoid`",
                    crate::diag::Fix::replace(at, "relu"),
                );
            } else {
                d = d.with_help("use a smooth function of it, or train what comes after it only");
            }
            out.push(d);
        }
    }
    out
}
