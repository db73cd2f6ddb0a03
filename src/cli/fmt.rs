//! `nnc fmt [--check] FILE...`: rewrite files in the canonical layout, or
//! with `--check` list the files that are not (exit 1), as CI wants.

use crate::syntax::format::format;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct FmtArgs {
    /// Write nothing; list the files that would change and exit 1 if any.
    #[arg(long)]
    check: bool,
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn fmt(args: &FmtArgs) -> i32 {
    let mut status = 0;
    for path in &args.files {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", path.display());
                status = 1;
                continue;
            }
        };
        let out = match format(&text) {
            Ok(out) => out,
            Err(e) => {
                // Broken text is left alone: `nnc check` explains the errors.
                eprintln!("error: not formatting {}: {e}", path.display());
                status = 1;
                continue;
            }
        };
        if out == text {
            continue;
        }
        if args.check {
            super::say!("{}", path.display());
            status = 1;
        } else if let Err(e) = crate::runtime::checkpoint::write_atomic(path, out.as_bytes()) {
            // Through a temporary file: a full disk must not truncate the
            // user's source.
            eprintln!("error: {e}");
            status = 1;
        }
    }
    status
}
