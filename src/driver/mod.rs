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
/// The stdlib is parsed once per process: every compilation adds it first,
/// so its file ids, and the spans in the cached syntax trees, always match.
fn load_stdlib(db: &mut SourceDb) -> Vec<(FileId, Module)> {
    static PARSED: std::sync::OnceLock<Vec<Module>> = std::sync::OnceLock::new();
    let parsed = PARSED.get_or_init(|| {
        sema::STDLIB
            .iter()
            .enumerate()
            .map(|(i, (name, text))| {
                let (m, diags) = syntax::parse(FileId(i as u32), text);
                debug_assert!(diags.is_empty(), "stdlib {name} has syntax errors: {diags:?}");
                m
            })
            .collect()
    });
    assert!(
        db.files().next().is_none(),
        "internal error: the stdlib must be the first files of a SourceDb"
    );
    sema::STDLIB
        .iter()
        .zip(parsed)
        .map(|((name, text), m)| (db.add(format!("<stdlib>/{name}.nn"), *text, true), m.clone()))
        .collect()
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
    let mut analysis = sema::analyze(&db, root, &module, &stdlib, &imported);
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
        analysis,
    }
}

pub use crate::runtime::step::{training_step, StepLayout};

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
    let mut db = SourceDb::new();
    let stdlib = load_stdlib(&mut db);
    let root = db.add("<test>", text, false);
    let (module, parse) = syntax::parse(root, text);
    if !parse.is_empty() {
        return Err(parse);
    }
    sema::lower_function(&db, root, &module, &stdlib, name, args).map_err(|d| d.items)
}
