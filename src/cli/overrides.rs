//! `--set NAME=VALUE` for `nnc run` (and every `nnc tune` trial): the file
//! is checked, the values are written into its text (`teach::overrides`),
//! and the edited text is checked again as if it were the file.

use super::cmdline::CmdLine;
use crate::diag::Diagnostic;
use crate::driver::Compilation;
use crate::teach::overrides::{apply, Override, OverrideError};
use std::path::Path;

/// `lr=0.01` → `Override`; a coded error (E0802) for text without `=`.
pub fn parse(cmd: &CmdLine, items: &[String]) -> Result<Vec<Override>, i32> {
    let mut out: Vec<Override> = vec![];
    for item in items {
        let Some((name, value)) = item.split_once('=') else {
            let d = Diagnostic::error(
                "E0802",
                format!("`{item}` is not NAME=VALUE"),
                cmd.span_of(item),
                "expected NAME=VALUE",
            )
            .with_help("e.g. `--set lr=0.01`");
            return Err(cmd.fail(d));
        };
        let name = name.trim();
        if out.iter().any(|o| o.name == name) {
            let d = Diagnostic::error("E0802", format!("`{name}` is set twice"), cmd.span_of(item), "set again here");
            return Err(cmd.fail(d));
        }
        out.push(Override {
            name: name.to_string(),
            value: value.trim().to_string(),
        });
    }
    Ok(out)
}

/// Report an override error at its argument.
pub fn fail(cmd: &CmdLine, e: &OverrideError, file: &Path) -> i32 {
    match e {
        OverrideError::Unknown { name, known } => {
            let known: Vec<&str> = known.iter().map(String::as_str).collect();
            cmd.unknown(
                "E0801",
                format!("`{name}` is not a setting of the train block, a parameter of its optimizer or a named size of a model"),
                name,
                "no such setting",
                &known,
            )
        }
        OverrideError::BadValue { name, value, why } => {
            let d = Diagnostic::error(
                "E0802",
                format!("`{value}` is not a value for `{name}`: {why}"),
                cmd.span_of(&format!("{name}={value}")),
                "this value",
            );
            cmd.fail(d)
        }
        OverrideError::NoTrain => cmd.fail(Diagnostic::error(
            "E0805",
            format!("{} has no `train` block to set values in", file.display()),
            cmd.span_of(&file.display().to_string()),
            "no training run",
        )),
    }
}

/// The file of `c` with `overrides` written into its text, compiled; every
/// diagnostic notes the values, since the text it shows is the edited one
/// (a width that the next layer does not fit is found here).
pub fn compile_with(file: &Path, c: &Compilation, overrides: &[Override]) -> Result<Compilation, OverrideError> {
    let text = &c.db.file(c.root).text;
    let edited = apply(text, &c.module, &c.analysis.globals, None, overrides)?;
    let mut out = super::load_bytes(file, edited.as_bytes());
    let set: Vec<String> = overrides.iter().map(|o| format!("`--set {}={}`", o.name, o.value)).collect();
    for d in &mut out.analysis.diags.items {
        d.notes.push(format!("checked with {}", set.join(" ")));
    }
    Ok(out)
}

/// `report::load_checked` with `set` applied to the file's text first.
pub fn load_checked(file: &Path, data_dir: Option<&Path>, set: &[String]) -> Option<Compilation> {
    if set.is_empty() {
        return super::report::load_checked(file, data_dir);
    }
    let cmd = CmdLine::from_env();
    let overrides = parse(&cmd, set).ok()?;
    let c = super::load_clean(file)?;
    match compile_with(file, &c, &overrides) {
        Ok(edited) => super::report::check_loaded(edited, file, data_dir),
        Err(e) => {
            fail(&cmd, &e, file);
            None
        }
    }
}
