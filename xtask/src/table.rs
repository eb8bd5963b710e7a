//! Plain-text tables for the demo and the benchmarks.

use std::fmt::Write;

/// A table of strings with a header row, printed with aligned columns.
#[derive(Debug, Default)]
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
    all_left: bool,
}

impl Table {
    /// A table whose first row is `header`.
    pub(crate) fn new<S: ToString>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            rows: vec![header.into_iter().map(|cell| cell.to_string()).collect()],
            all_left: false,
        }
    }

    /// Aligns every column left (for text, not figures).
    pub(crate) fn left_aligned(mut self) -> Self {
        self.all_left = true;
        self
    }

    /// Appends a row.
    pub(crate) fn row<S: ToString>(&mut self, cells: impl IntoIterator<Item = S>) {
        self.rows
            .push(cells.into_iter().map(|cell| cell.to_string()).collect());
    }

    /// Renders the table: the first column left-aligned, the others right-aligned unless
    /// [`Table::left_aligned`] was asked for.
    pub(crate) fn render(&self) -> String {
        let columns = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                self.rows
                    .iter()
                    .filter_map(|row| row.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for (r, row) in self.rows.iter().enumerate() {
            for (c, cell) in row.iter().enumerate() {
                let width = widths[c];
                if c == 0 {
                    let _ = write!(out, "{cell:<width$}");
                } else if self.all_left {
                    let _ = write!(out, "  {cell:<width$}");
                } else {
                    let _ = write!(out, "  {cell:>width$}");
                }
            }
            out.push('\n');
            if r == 0 {
                let total = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
                out.push_str(&"-".repeat(total));
                out.push('\n');
            }
        }
        out
    }
}
