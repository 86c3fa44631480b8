//! Result tables as named columns: the one source of both the CSV files and
//! the Python package's DataFrames, so the two cannot disagree.

use rayon::prelude::*;

/// One column of a table.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// Whole numbers: `point`, `replication`.
    Index(Vec<u64>),
    /// Values written as [`super::cell`] writes them.
    Number(Vec<f64>),
    /// Labels (swept values, metric names, text cells): row i shows
    /// `labels[rows[i]]`, so a label repeated over many rows is stored once.
    Text { labels: Vec<String>, rows: Vec<u32> },
}

impl Column {
    /// A text column of one cell per row.
    pub fn text(cells: Vec<String>) -> Column {
        let rows = (0..cells.len() as u32).collect();
        Column::Text { labels: cells, rows }
    }

    pub fn len(&self) -> usize {
        match self {
            Column::Index(v) => v.len(),
            Column::Number(v) => v.len(),
            Column::Text { rows, .. } => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Named columns of equal length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub names: Vec<String>,
    pub columns: Vec<Column>,
}

impl Table {
    pub fn push(&mut self, name: impl Into<String>, column: Column) {
        self.names.push(name.into());
        self.columns.push(column);
    }

    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    /// The CSV file: the header, then every row.
    pub fn csv(&self) -> Vec<u8> {
        let mut out = self.header();
        self.push_rows(&mut out);
        out.into_bytes()
    }

    /// The header line.
    pub fn header(&self) -> String {
        super::csv_row(&self.names)
    }

    /// Appends every row as CSV lines; blocks of rows are formatted in
    /// parallel and joined in order.
    pub fn push_rows(&self, out: &mut String) {
        const BLOCK: usize = 4096;
        // Labels are quoted once, not once per row.
        let quoted: Vec<Vec<String>> = self
            .columns
            .iter()
            .map(|c| match c {
                Column::Text { labels, .. } => {
                    labels.iter().map(|l| super::csv_row(std::slice::from_ref(l)).trim_end().to_string()).collect()
                }
                _ => Vec::new(),
            })
            .collect();
        let rows = self.rows();
        let blocks: Vec<String> = (0..rows.div_ceil(BLOCK))
            .into_par_iter()
            .map(|b| {
                let mut text = String::with_capacity(BLOCK * 16 * self.columns.len());
                for i in b * BLOCK..rows.min((b + 1) * BLOCK) {
                    for (c, column) in self.columns.iter().enumerate() {
                        if c > 0 {
                            text.push(',');
                        }
                        match column {
                            Column::Index(v) => text.push_str(itoa::Buffer::new().format(v[i])),
                            Column::Number(v) => super::push_number(&mut text, v[i]),
                            Column::Text { rows, .. } => text.push_str(&quoted[c][rows[i] as usize]),
                        }
                    }
                    text.push('\n');
                }
                text
            })
            .collect();
        blocks.iter().for_each(|b| out.push_str(b));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_cells_as_the_csv_files_do() {
        let mut t = Table::default();
        t.push("point", Column::Index(vec![0, 1]));
        t.push("a,b", Column::Text { labels: vec!["x".into(), "\"y\"".into()], rows: vec![1, 0] });
        t.push("v", Column::Number(vec![3.0, f64::NAN]));
        assert_eq!(String::from_utf8(t.csv()).unwrap(), "point,\"a,b\",v\n0,\"\"\"y\"\"\",3\n1,x,NaN\n");
    }
}
