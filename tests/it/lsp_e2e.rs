//! The real-client end-to-end test: pytest-lsp (a Python LSP client built
//! on pygls, announcing VS Code's capabilities) starts the built `nnc lsp`
//! and drives it through `tests/lsp/test_nnc_lsp.py`. A missing client is a
//! failure with the install command, never a silent skip.

use std::path::Path;
use std::process::Command;

#[test]
fn lsp_e2e_with_a_real_client() {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = Command::new(&python).args(["-c", "import pytest_lsp"]).output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => panic!(
            "the end-to-end LSP test needs pytest-lsp: install it with `{python} -m pip install pytest-lsp==1.0.1` \
             (CI's .ci/run does this), or set PYTHON to an interpreter that has it"
        ),
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lsp");
    let out = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(&dir)
        .current_dir(&dir)
        .env("NNC_BIN", env!("CARGO_BIN_EXE_nnc"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run pytest");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "pytest-lsp test failed:\n{stdout}\n{stderr}");
    // At least one test ran (pytest exits 5 on none, but be explicit).
    assert!(stdout.contains(" passed"), "no test ran:\n{stdout}");
}
