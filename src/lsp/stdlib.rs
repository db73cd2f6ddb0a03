//! The stdlib is compiled into the binary, but "go to definition" needs a
//! file an editor can open: write the embedded text once to a cache
//! directory (`$XDG_CACHE_HOME/nnc/stdlib-<version>/`, else
//! `~/.cache/nnc/...`, else the temp dir) and point at those files.

use crate::sema::STDLIB;
use std::path::{Path, PathBuf};

/// Where the stdlib files of this nnc version live on disk.
pub fn dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("nnc").join(format!("stdlib-{}", env!("CARGO_PKG_VERSION")))
}

/// Write the stdlib files under `dir` unless they are there with the same
/// text (so an edited copy is repaired, and nothing is rewritten needlessly).
pub fn materialise(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, text) in STDLIB {
        let path = dir.join(format!("{name}.nn"));
        if std::fs::read_to_string(&path).ok().as_deref() != Some(*text) {
            // Write then rename, so a second server never reads half a file.
            let tmp = dir.join(format!(".{name}.nn.{}", std::process::id()));
            let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &path));
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            written?;
        }
    }
    Ok(())
}

/// The on-disk path of a stdlib source name like `<stdlib>/layers.nn`.
pub fn path_of(dir: &Path, source_name: &str) -> Option<PathBuf> {
    source_name.strip_prefix("<stdlib>/").map(|file| dir.join(file))
}
