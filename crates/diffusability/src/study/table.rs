//! The study's input table: one row per (tokenizer, backbone, cfg) with metric and quality columns,
//! read from a CSV file or joined from `metrics` JSON reports and a results CSV.
//!
//! Cells stay text until a column is used, so that any column can be a grouping key and a bad number is
//! reported with its file, line and column only when it matters.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// A table of text cells with named columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// How messages name the table (its path, or the joined sources).
    pub source: String,
    pub columns: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Where each row came from, for messages (e.g. "line 7").
    origins: Vec<String>,
}

/// Cells that mean "no value" (case-insensitive), besides the empty cell.
const MISSING: &[&str] = &["na", "nan", "n/a", "null", "none", "-"];

/// Whether a cell holds no value.
pub fn is_missing(cell: &str) -> bool {
    let c = cell.trim();
    c.is_empty() || MISSING.iter().any(|m| c.eq_ignore_ascii_case(m))
}

impl Table {
    /// A table from its parts; every row must have one cell per column.
    pub fn new(
        source: impl Into<String>,
        columns: Vec<String>,
        rows: Vec<Vec<String>>,
    ) -> Result<Table> {
        let source = source.into();
        for (i, r) in rows.iter().enumerate() {
            if r.len() != columns.len() {
                return Err(Error::input_msg(format!(
                    "{source}: row {}: has {} cells, expected {} (one per column)",
                    i + 1,
                    r.len(),
                    columns.len()
                )));
            }
        }
        let origins = (0..rows.len()).map(|i| format!("row {}", i + 1)).collect();
        Ok(Table {
            source,
            columns,
            rows,
            origins,
        })
    }

    /// Reads a CSV file with a header row. Cells are trimmed; column names must be unique and non-empty.
    pub fn read_csv(path: &Path) -> Result<Table> {
        if !path.exists() {
            return Err(Error::not_found(path, "table"));
        }
        let file = std::fs::File::open(path)
            .map_err(|e| Error::input(path, None, format!("cannot open: {e}")))?;
        Table::from_csv_reader(&path.display().to_string(), file)
    }

    /// Reads CSV text (header row first) from `reader`; `source` names it in messages.
    pub fn from_csv_reader<R: std::io::Read>(source: &str, reader: R) -> Result<Table> {
        let mut rdr = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .flexible(false)
            .from_reader(reader);
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| Error::input_msg(format!("{source}: cannot read the header row: {e}")))?
            .iter()
            .map(|s| s.trim_start_matches('\u{feff}').to_string())
            .collect();
        if header.iter().all(|h| h.is_empty()) {
            return Err(Error::input_msg(format!(
                "{source}: the file is empty, expected a header row (tokenizer, backbone, ..., metric and quality columns)"
            )));
        }
        for (i, h) in header.iter().enumerate() {
            if h.is_empty() {
                return Err(Error::input_msg(format!(
                    "{source}: header column {} is empty, expected a column name",
                    i + 1
                )));
            }
            if header[..i].contains(h) {
                return Err(Error::input_msg(format!(
                    "{source}: column `{h}` appears twice in the header"
                )));
            }
        }
        let mut rows = Vec::new();
        let mut origins = Vec::new();
        for rec in rdr.records() {
            let rec = rec.map_err(|e| {
                let line = e
                    .position()
                    .map_or(String::new(), |p| format!("line {}: ", p.line()));
                let what = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("has {len} cells, expected {expected_len} (one per header column)")
                    }
                    _ => e.to_string(),
                };
                Error::input_msg(format!("{source}: {line}{what}"))
            })?;
            let line = rec.position().map_or(0, |p| p.line());
            rows.push(rec.iter().map(str::to_string).collect());
            origins.push(format!("line {line}"));
        }
        Ok(Table {
            source: source.to_string(),
            columns: header,
            rows,
            origins,
        })
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    /// The index of column `name`, or an input error saying what it is needed for.
    pub fn require(&self, name: &str, why: &str) -> Result<usize> {
        self.column(name).ok_or_else(|| {
            Error::input_msg(format!(
                "{}: no column `{name}` ({why}); the columns are: {}",
                self.source,
                self.columns.join(", ")
            ))
        })
    }

    /// The text of a cell.
    pub fn text(&self, row: usize, col: usize) -> &str {
        &self.rows[row][col]
    }

    /// Where row `row` came from ("line 7" of a CSV file).
    pub fn origin(&self, row: usize) -> &str {
        &self.origins[row]
    }

    /// The number in a cell: `Ok(None)` for a missing value (empty, `NA`, `nan`, ...), an input error
    /// naming the line and column for text that is not a finite number.
    pub fn number(&self, row: usize, col: usize) -> Result<Option<f64>> {
        let cell = self.text(row, col);
        if is_missing(cell) {
            return Ok(None);
        }
        match cell.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(Error::input_msg(format!(
                "{}: {}, column `{}`: expected a finite number, found `{cell}`",
                self.source,
                self.origin(row),
                self.columns[col]
            ))),
        }
    }

    /// Joins `metrics` JSON reports (every `*.json` in `dir`, one per tokenizer) with a results table by
    /// its `tokenizer` column. A report belongs to the tokenizer named by its file stem, or else by its
    /// `input.name`. Results rows without a report and reports without results rows are left out and
    /// counted in the returned warnings.
    pub fn from_reports(dir: &Path, results: &Path) -> Result<(Table, Vec<String>)> {
        let res = Table::read_csv(results)?;
        let tok_col = res.require("tokenizer", "to join the results with the reports")?;
        if !dir.exists() {
            return Err(Error::not_found(dir, "metrics directory"));
        }
        if !dir.is_dir() {
            return Err(Error::input(
                dir,
                None,
                "expected a directory of `metrics` JSON reports, found a file",
            ));
        }
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| Error::input(dir, None, format!("cannot list: {e}")))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(Error::input(
                dir,
                None,
                "holds no .json reports, expected one `metrics` report per tokenizer",
            ));
        }
        let tokenizers: Vec<&str> = (0..res.len()).map(|i| res.text(i, tok_col)).collect();
        let mut warnings = Vec::new();
        let mut by_name: BTreeMap<String, (String, BTreeMap<String, f64>)> = BTreeMap::new();
        let mut metric_names: Vec<String> = Vec::new();
        for f in &files {
            let (stem, input_name, metrics) = read_report(f)?;
            let name = [Some(stem.clone()), input_name.clone()]
                .into_iter()
                .flatten()
                .find(|n| tokenizers.contains(&n.as_str()));
            let Some(name) = name else {
                warnings.push(format!(
                    "{}: no row of {} has tokenizer `{stem}`{}: report not used",
                    f.display(),
                    results.display(),
                    input_name.map_or(String::new(), |n| format!(" or `{n}` (its input.name)"))
                ));
                continue;
            };
            if let Some((other, _)) = by_name.get(&name) {
                return Err(Error::input(
                    f,
                    None,
                    format!("is a second report for tokenizer `{name}` (the first is {other})"),
                ));
            }
            for k in metrics.keys() {
                if !metric_names.contains(k) {
                    metric_names.push(k.clone());
                }
            }
            by_name.insert(name, (f.display().to_string(), metrics));
        }
        metric_names.sort_by_key(|n| (super::known::order(n), n.clone()));
        for m in &metric_names {
            if res.column(m).is_some() {
                return Err(Error::input(
                    results,
                    None,
                    format!(
                        "column `{m}` is also a metric of the reports in {}; keep it in one place",
                        dir.display()
                    ),
                ));
            }
        }
        let mut columns = res.columns.clone();
        columns.extend(metric_names.iter().cloned());
        let mut rows = Vec::new();
        let mut origins = Vec::new();
        let mut unmatched: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..res.len() {
            let Some((_, metrics)) = by_name.get(res.text(i, tok_col)) else {
                *unmatched
                    .entry(res.text(i, tok_col).to_string())
                    .or_default() += 1;
                continue;
            };
            let mut row = res.rows[i].clone();
            row.extend(
                metric_names
                    .iter()
                    .map(|m| metrics.get(m).map_or(String::new(), |v| v.to_string())),
            );
            rows.push(row);
            origins.push(format!("{} {}", results.display(), res.origin(i)));
        }
        if !unmatched.is_empty() {
            let n: usize = unmatched.values().sum();
            let names: Vec<&str> = unmatched.keys().map(String::as_str).collect();
            warnings.push(format!(
                "{n} row(s) of {} have no report in {} and are left out (tokenizers: {})",
                results.display(),
                dir.display(),
                names.join(", ")
            ));
        }
        let table = Table {
            source: format!("{} joined with {}", results.display(), dir.display()),
            columns,
            rows,
            origins,
        };
        Ok((table, warnings))
    }
}

/// The file stem, `input.name` and `metrics` of one report.
fn read_report(path: &Path) -> Result<(String, Option<String>, BTreeMap<String, f64>)> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::input(path, None, format!("cannot read: {e}")))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::input(
            path,
            None,
            format!("is not JSON ({e}), expected a `metrics` report"),
        )
    })?;
    let metrics = v
        .get("metrics")
        .and_then(|m| m.as_object())
        .ok_or_else(|| {
            Error::input(
                path,
                Some("metrics"),
                "is missing or not an object, expected the report of `diffusability metrics`",
            )
        })?;
    let mut out = BTreeMap::new();
    for (k, val) in metrics {
        let x = val.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
            Error::input(
                path,
                Some(&format!("metrics.{k}")),
                format!("expected a finite number, found {val}"),
            )
        })?;
        out.insert(k.clone(), x);
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let input_name = v
        .get("input")
        .and_then(|i| i.get("name"))
        .and_then(|n| n.as_str())
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    Ok((stem, input_name, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> Result<Table> {
        Table::from_csv_reader("t.csv", text.as_bytes())
    }

    #[test]
    fn cells_numbers_and_missing_values() {
        let tab = t("tokenizer, viv ,gfid\na, 1.5, NA\nb,,2\nc,x,3\n").unwrap();
        assert_eq!(tab.columns, ["tokenizer", "viv", "gfid"]);
        assert_eq!(tab.len(), 3);
        assert_eq!(tab.number(0, 1).unwrap(), Some(1.5));
        assert_eq!(tab.number(0, 2).unwrap(), None);
        assert_eq!(tab.number(1, 1).unwrap(), None);
        assert_eq!(
            tab.number(2, 1).unwrap_err().message,
            "t.csv: line 4, column `viv`: expected a finite number, found `x`"
        );
    }

    #[test]
    fn bad_headers_and_ragged_rows() {
        assert_eq!(
            t("a,b,a\n1,2,3\n").unwrap_err().message,
            "t.csv: column `a` appears twice in the header"
        );
        assert_eq!(
            t("a,b\n1,2\n1,2,3\n").unwrap_err().message,
            "t.csv: line 3: has 3 cells, expected 2 (one per header column)"
        );
        let tab = t("a,b\n1,2\n").unwrap();
        assert_eq!(
            tab.require("gfid", "the --target column")
                .unwrap_err()
                .message,
            "t.csv: no column `gfid` (the --target column); the columns are: a, b"
        );
        assert_eq!(tab.number(0, 0).map(|_| ()).map_err(|e| e.message), Ok(()));
        let inf = t("a\ninf\n").unwrap();
        assert!(inf.number(0, 0).is_err());
        assert_eq!(
            Table::new("mem", vec!["a".into(), "b".into()], vec![vec!["1".into()]])
                .unwrap_err()
                .message,
            "mem: row 1: has 1 cells, expected 2 (one per column)"
        );
        let built = Table::new("mem", vec!["a".into()], vec![vec!["2.5".into()]]).unwrap();
        assert_eq!(
            (built.number(0, 0).unwrap(), built.origin(0)),
            (Some(2.5), "row 1")
        );
    }
}
