//! Plain-text tables with aligned columns, as the programs print them.

/// Formats a header line and `rows` as left-aligned columns separated by two spaces.
/// The last column is not padded, and every line ends in a newline.
pub fn format_table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|header| header.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }

    let header_row: Vec<String> = headers.iter().map(|header| (*header).to_owned()).collect();
    let mut table = String::new();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (index, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if index + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        table.push_str(line.trim_end());
        table.push('\n');
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_widest_cell() {
        let rows = vec![vec!["a".to_owned(), "long value".to_owned(), "x".to_owned()], vec!["bbbb".to_owned(), "v".to_owned(), "".to_owned()]];
        let table = format_table(&["ID", "NAME", "LAST"], &rows);
        assert_eq!(table, "ID    NAME        LAST\na     long value  x\nbbbb  v\n");
    }
}
