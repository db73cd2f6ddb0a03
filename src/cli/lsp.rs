//! `nnc lsp`: the language server on stdin/stdout.

pub fn lsp() -> i32 {
    match crate::lsp::serve_stdio() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("nnc lsp: {e}");
            1
        }
    }
}
