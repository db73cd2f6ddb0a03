//! Byte offsets ↔ LSP positions. LSP counts columns in UTF-16 code units;
//! the compiler's spans are UTF-8 byte offsets.

use lsp_types::{Position, Range};

/// Line starts of one text, for converting in both directions.
#[derive(Debug, Clone)]
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    pub fn position(&self, text: &str, offset: usize) -> Position {
        let offset = floor_char_boundary(text, offset.min(text.len()));
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let col: usize = text[self.starts[line]..offset].chars().map(char::len_utf16).sum();
        Position::new(line as u32, col as u32)
    }

    /// The byte offset of a position; positions past a line's end or the
    /// text's end are clamped (clients send them after edits race).
    pub fn offset(&self, text: &str, pos: Position) -> usize {
        let Some(&start) = self.starts.get(pos.line as usize) else {
            return text.len();
        };
        let end = self.starts.get(pos.line as usize + 1).map_or(text.len(), |&e| e.saturating_sub(1));
        let mut units = 0;
        for (i, ch) in text[start..end].char_indices() {
            if units >= pos.character as usize {
                return start + i;
            }
            units += ch.len_utf16();
        }
        end
    }

    pub fn range(&self, text: &str, start: usize, end: usize) -> Range {
        Range::new(self.position(text, start), self.position(text, end))
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_utf16_columns() {
        let text = "ab\n× = 1\n\nend";
        let idx = LineIndex::new(text);
        for off in [0, 1, 3, 5, 8, 11, 12] {
            assert_eq!(idx.offset(text, idx.position(text, off)), off, "offset {off}");
        }
        assert_eq!(idx.position(text, 6), Position::new(1, 2)); // after "× "
        assert_eq!(idx.offset(text, Position::new(0, 99)), 2);
        assert_eq!(idx.offset(text, Position::new(99, 0)), text.len());
    }
}
