//! What data files (traffic and spot traces, empirical samples) share: one
//! CSV reader, their error type and their timestamps.

use std::fmt;

/// A problem in a trace file, with the file's own 1-based line number when
/// one line is to blame.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct TraceError {
    pub line: Option<usize>,
    pub message: String,
}

impl TraceError {
    pub fn at(line: usize, message: impl Into<String>) -> Self {
        TraceError { line: Some(line), message: message.into() }
    }
    /// A problem with the file as a whole.
    pub fn whole(message: impl Into<String>) -> Self {
        TraceError { line: None, message: message.into() }
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// The records of a CSV text, read with the `csv` crate: quoted cells as
/// CSV has them, blank lines and lines starting with `#` skipped, cells
/// trimmed, rows of any length. Each comes with its 1-based line in the file.
pub fn csv_records(text: &str) -> impl Iterator<Item = Result<(usize, csv::StringRecord), TraceError>> {
    // The crate's line count skips blank and comment lines without counting
    // them, so those are dropped here, and each kept line remembers its own.
    let mut lines = Vec::new();
    let mut data = String::with_capacity(text.len());
    for (i, l) in text.lines().enumerate() {
        let t = l.trim();
        if !t.is_empty() && !t.starts_with('#') {
            lines.push(i + 1);
            data.push_str(l);
            data.push('\n');
        }
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(std::io::Cursor::new(data.into_bytes()));
    let line_of =
        move |pos: Option<&csv::Position>| pos.and_then(|p| lines.get((p.line() as usize).saturating_sub(1)).copied());
    let mut record = csv::StringRecord::new();
    std::iter::from_fn(move || match reader.read_record(&mut record) {
        Ok(true) => Some(Ok((line_of(record.position()).unwrap_or(0), record.clone()))),
        Ok(false) => None,
        Err(e) => Some(Err(TraceError { line: line_of(e.position()), message: format!("not readable as CSV: {e}") })),
    })
}

/// A CSV table: its header (with its line) and its data rows.
pub struct CsvTable {
    pub header_line: usize,
    pub header: Vec<String>,
    pub rows: Vec<(usize, csv::StringRecord)>,
}

impl CsvTable {
    /// Reads `text`, whose first record is the header.
    pub fn parse(text: &str) -> Result<CsvTable, TraceError> {
        let mut records = csv_records(text);
        let (header_line, header) = match records.next() {
            Some(r) => r?,
            None => return Err(TraceError::whole("the file is empty: expected a header row and data rows")),
        };
        let rows = records.collect::<Result<Vec<_>, _>>()?;
        Ok(CsvTable { header_line, header: header.iter().map(str::to_string).collect(), rows })
    }

    /// The first column named (case-insensitively) one of `names`.
    pub fn column(&self, names: &[&str]) -> Option<usize> {
        self.header.iter().position(|h| names.iter().any(|n| h.eq_ignore_ascii_case(n)))
    }

    /// Cell `index` of the row at `line`, or an error naming the column it lacks.
    pub fn cell<'a>(&self, row: &'a csv::StringRecord, index: usize, line: usize) -> Result<&'a str, TraceError> {
        row.get(index).ok_or_else(|| {
            TraceError::at(
                line,
                format!(
                    "expected {} columns as in the header, found {}; no `{}`",
                    self.header.len(),
                    row.len(),
                    self.header[index]
                ),
            )
        })
    }

    /// The header as written, for messages.
    pub fn header_text(&self) -> String {
        self.header.join(",")
    }
}

/// `YYYY-MM-DD hh:mm:ss[.fraction]` (or with `T`, optional `Z`) as
/// nanoseconds since 1970-01-01 UTC; digits past nanoseconds are dropped.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim().trim_end_matches('Z');
    let (date, time) = text.split_once([' ', 'T'])?;
    let mut d = date.split('-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    if d.next().is_some() || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let (hms, frac) = match time.trim().split_once('.') {
        Some((hms, frac)) => (hms, frac),
        None => (time.trim(), ""),
    };
    let mut t = hms.split(':');
    let h: i64 = t.next()?.parse().ok()?;
    let m: i64 = t.next()?.parse().ok()?;
    let s: i64 = t.next()?.parse().ok()?;
    if t.next().is_some() || !(0..24).contains(&h) || !(0..60).contains(&m) || !(0..61).contains(&s) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut nanos: i64 = 0;
    for k in 0..9 {
        nanos = nanos * 10 + frac.as_bytes().get(k).map_or(0, |b| (b - b'0') as i64);
    }
    let secs = days_from_epoch(year, month, day) * 86_400 + h * 3600 + m * 60 + s;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date.
fn days_from_epoch(y: i64, m: u32, d: u32) -> i64 {
    // Count whole years in 400-year eras from year 0 (a March-based year puts
    // the leap day last), then the days within the year.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_are_the_files_own() {
        let text = "a,b\n0,1\n\n# note\n\"6,0\",abc\n\n1,2";
        let rows: Vec<(usize, Vec<String>)> = csv_records(text)
            .map(|r| r.map(|(l, rec)| (l, rec.iter().map(str::to_string).collect())).unwrap())
            .collect();
        let expected = [(1, vec!["a", "b"]), (2, vec!["0", "1"]), (5, vec!["6,0", "abc"]), (7, vec!["1", "2"])];
        assert_eq!(rows.len(), expected.len());
        for ((line, cells), (want_line, want)) in rows.iter().zip(expected) {
            assert_eq!((*line, cells.iter().map(String::as_str).collect::<Vec<_>>()), (want_line, want));
        }
    }
}
