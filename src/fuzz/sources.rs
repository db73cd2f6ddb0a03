//! The `sources` target: `.nn` text, mutated from the repository's files or
//! generated, through everything `nnc check` and `nnc run` do before data
//! is read: parsing, checking, rendering every diagnostic, formatting,
//! summaries, the training step and its optimisation, each verified.

use super::rng::Rng;
use super::runner::Target;
use super::{gen, mutate};
use crate::{diag, driver, ir, opt, runtime, syntax};
use std::path::Path;
use std::sync::OnceLock;

pub struct Sources;

/// Every `.nn` file under `examples/`, `stdlib/` and `tests/` of the
/// checkout nnc was built from (the stdlib is compiled in, so it is always
/// there), sorted so a seed means the same inputs everywhere.
pub fn corpus() -> &'static [String] {
    static CORPUS: OnceLock<Vec<String>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![];
        let mut dirs: Vec<_> = ["examples", "stdlib", "tests"].iter().map(|d| root.join(d)).collect();
        while let Some(d) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else { continue };
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "nn") {
                    files.push(p);
                }
            }
        }
        files.sort();
        let mut texts: Vec<String> = files.iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect();
        texts.extend(crate::sema::STDLIB.iter().map(|(_, t)| t.to_string()));
        texts
    })
}

impl Target for Sources {
    fn name(&self) -> &'static str {
        "sources"
    }
    fn extension(&self, _: &[u8]) -> &'static str {
        "nn"
    }
    fn generate(&self, rng: &mut Rng, index: u64) -> Vec<u8> {
        let corpus = corpus();
        match index % 4 {
            // Generated programs, as they are and mutated.
            0 => gen::program(rng).into_bytes(),
            1 if rng.one_in(2) => {
                let p = gen::program(rng);
                let other = rng.pick(corpus);
                mutate::mutate(rng, &p, other)
            }
            _ => {
                let a = rng.pick(corpus);
                let b = rng.pick(corpus);
                mutate::mutate(rng, a, b)
            }
        }
    }
    fn check(&self, input: &[u8]) {
        check_source(input);
    }
}

/// Everything that must hold for any source text.
pub fn check_source(input: &[u8]) {
    let c = driver::compile_bytes("fuzz.nn", input);
    for d in c.diagnostics() {
        assert!(diag::lookup(d.code).is_some(), "unregistered code {}", d.code);
        for l in std::iter::once(&d.primary).chain(&d.secondary) {
            let len = c.db.file(l.span.file).text.len();
            assert!(
                l.span.start <= l.span.end && l.span.end as usize <= len,
                "span {} outside its file",
                l.span
            );
        }
        let _ = diag::render_plain(d, &c.db);
    }
    if let Ok(text) = std::str::from_utf8(input) {
        let _ = syntax::lexer::lex(text);
        // The formatter refuses text that does not parse, by parsing it
        // as the compilation just did; it is given only text that parsed.
        // What it returns must parse without errors.
        if let Some(Ok(formatted)) = c.parses.then(|| syntax::format::format_parsed(text)) {
            let (_, errors) = syntax::parse(crate::base::FileId(0), &formatted);
            assert!(errors.is_empty(), "formatting produced text that does not parse:\n{formatted}");
        }
    }
    if c.has_errors() {
        return;
    }
    for (model, func) in &c.analysis.model_funcs {
        let layers = c
            .analysis
            .model_layers
            .iter()
            .find(|(m, _)| m == model)
            .map_or(&[][..], |(_, l)| l.as_slice());
        let _ = runtime::summary::summarize(func, layers);
        ir::verify(func).unwrap_or_else(|e| panic!("model {model} does not verify: {e}"));
    }
    for p in &c.analysis.plans {
        let (step, _) = driver::training_step(p);
        ir::verify(&step).unwrap_or_else(|e| panic!("the training step does not verify: {e}"));
        let optimized = opt::optimize(&step);
        ir::verify(&optimized).unwrap_or_else(|e| panic!("the optimised step does not verify: {e}"));
    }
}
