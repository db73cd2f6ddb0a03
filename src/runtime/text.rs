//! Text as sequences of character ids, for character-level language models.
//!
//! A character's id is its Unicode code point, and `vocab` bounds the ids
//! (128: ASCII). So the model's sizes (`Embedding(128 -> 64)`, `Dense(256 ->
//! 128)`) are fixed by the file's `data =` line, never by the text it
//! reads, and an id maps back to its character without a table saved
//! beside the weights. A character whose code point reaches `vocab` is an
//! error with its line and column (E0605), as is a file that is not UTF-8
//! (E0606): a silently dropped or replaced character would train on text
//! that is not the file's.
//!
//! The text is cut into windows of `steps + 1` characters that follow one
//! another without overlap: `x` is the first `steps` of each, `y` the same
//! shifted by one, so `y[i, t]` is the character after `x[i, t]`.

use super::data::{DataError, Dataset};
use ndarray::{ArrayD, IxDyn};
use std::path::Path;

/// The ids of `text`'s characters, or E0605 at the first one outside the vocabulary.
pub fn char_ids(text: &str, vocab: usize, path: &Path) -> Result<Vec<u32>, DataError> {
    let mut ids = Vec::with_capacity(text.len());
    let (mut line, mut column) = (1, 0);
    for c in text.chars() {
        column += 1;
        let id = c as u32;
        if id as usize >= vocab {
            return Err(DataError::coded(
                "E0605",
                path,
                format!(
                    "line {line}, column {column}: {c:?} (U+{id:04X}) has id {id}, outside the vocabulary of {vocab} \
                     (ids 0 to {}); raise `vocab:` above {id}, or remove the character",
                    vocab - 1
                ),
            ));
        }
        if c == '\n' {
            line += 1;
            column = 0;
        }
        ids.push(id);
    }
    Ok(ids)
}

/// The bytes of a text file as a string, or E0606 at the first byte that is not UTF-8.
pub fn utf8(bytes: Vec<u8>, path: &Path) -> Result<String, DataError> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let good = &e.as_bytes()[..at];
        let line = 1 + good.iter().filter(|&&b| b == b'\n').count();
        let column =
            1 + std::str::from_utf8(&good[good.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1)..]).map_or(0, |s| s.chars().count());
        DataError::coded(
            "E0606",
            path,
            format!(
                "line {line}, column {column} (byte {at}): byte 0x{:02X} is not UTF-8; save the file as UTF-8 text",
                e.as_bytes()[at]
            ),
        )
    })
}

/// Read a text file as windows of `steps` character ids with next-character
/// targets (see the module doc).
pub fn load_text(path: &Path, steps: usize, vocab: usize) -> Result<Dataset, DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::new(path, format!("cannot read: {e}")))?;
    let text = utf8(bytes, path)?;
    let ids = char_ids(&text, vocab, path)?;
    let n = ids.len().saturating_sub(1) / steps.max(1);
    if n == 0 {
        return Err(DataError::new(
            path,
            format!(
                "the text has {} characters, too few for one sequence of `steps: {steps}` and its next character",
                ids.len()
            ),
        ));
    }
    let window = |shift: usize| -> ArrayD<f32> {
        let v: Vec<f32> = (0..n)
            .flat_map(|i| (0..steps).map(move |t| i * steps + t + shift))
            .map(|k| ids[k] as f32)
            .collect();
        ArrayD::from_shape_vec(IxDyn(&[n, steps]), v).expect("n * steps ids")
    };
    Ok(Dataset {
        x: window(0),
        y: window(1),
        y_is_class: true,
        num_classes: Some(vocab),
        name: path.file_stem().map_or_else(|| "text".into(), |s| s.to_string_lossy().into_owned()),
    })
}

/// The character of an id (`vocab` ≤ [`crate::plan::MAX_VOCAB`] keeps every id a character).
pub fn char_of(id: usize) -> char {
    char::from_u32(id as u32).unwrap_or(char::REPLACEMENT_CHARACTER)
}
