//! Which rows enter each analysis: grouping by any columns, dropping rows without a quality value, and
//! keeping per tokenizer the best-quality row over a column such as the CFG scale.

use super::Group;
use super::table::Table;
use crate::error::Result;

/// One row of the table as the analysis uses it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Index of the row in the table.
    pub index: usize,
    pub tokenizer: String,
    pub target: f64,
}

/// The rows of each group, groups in order of first appearance in the table.
#[derive(Clone, Debug, PartialEq)]
pub struct Selected {
    pub groups: Vec<(Group, Vec<Row>)>,
    pub warnings: Vec<String>,
}

/// Splits the rows of `table` by the values of `group_cols`, leaves out rows whose target (column
/// `target_col`) is missing, and, with `best_over`, keeps for each tokenizer in each group the row with
/// the best target (`higher_is_better` says which way; the first row in file order wins a tie).
/// Without `best_over`, a tokenizer with several rows in one group is reported in a warning.
pub fn select(
    table: &Table,
    tok_col: usize,
    target_col: usize,
    higher_is_better: bool,
    group_cols: &[usize],
    best_over: Option<usize>,
) -> Result<Selected> {
    let mut warnings = Vec::new();
    let mut groups: Vec<(Group, Vec<Row>)> = Vec::new();
    let mut missing_target = 0usize;
    for i in 0..table.len() {
        let Some(target) = table.number(i, target_col)? else {
            missing_target += 1;
            continue;
        };
        let key = Group(
            group_cols
                .iter()
                .map(|&c| (table.columns[c].clone(), table.text(i, c).to_string()))
                .collect(),
        );
        let row = Row {
            index: i,
            tokenizer: table.text(i, tok_col).to_string(),
            target,
        };
        match groups.iter_mut().find(|(g, _)| *g == key) {
            Some((_, rows)) => rows.push(row),
            None => groups.push((key, vec![row])),
        }
    }
    if missing_target > 0 {
        warnings.push(format!(
            "{}: {missing_target} of {} rows have no `{}` value and are left out",
            table.source,
            table.len(),
            table.columns[target_col]
        ));
    }
    for (g, rows) in &mut groups {
        let mut kept: Vec<Row> = Vec::new();
        let mut repeated: Vec<(String, usize)> = Vec::new();
        for r in rows.drain(..) {
            match kept.iter_mut().position(|k| k.tokenizer == r.tokenizer) {
                None => kept.push(r),
                Some(k) => {
                    match repeated.iter_mut().find(|(t, _)| *t == r.tokenizer) {
                        Some((_, c)) => *c += 1,
                        None => repeated.push((r.tokenizer.clone(), 2)),
                    }
                    if best_over.is_some() {
                        let better = if higher_is_better {
                            r.target > kept[k].target
                        } else {
                            r.target < kept[k].target
                        };
                        if better {
                            kept[k] = r;
                        }
                    } else {
                        kept.push(r);
                    }
                }
            }
        }
        if best_over.is_none() && !repeated.is_empty() {
            let list: Vec<String> = repeated
                .iter()
                .take(5)
                .map(|(t, c)| format!("`{t}` ({c} rows)"))
                .collect();
            warnings.push(format!(
                "{}: {} tokenizer(s) have several rows (e.g. one per CFG scale): {}{}; all are used as separate \
                 points: pass --best-over cfg or --group-by cfg to analyse one row per tokenizer",
                g.label(),
                repeated.len(),
                list.join(", "),
                if repeated.len() > 5 { ", ..." } else { "" }
            ));
        }
        *rows = kept;
    }
    Ok(Selected { groups, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_row_per_tokenizer_and_group() {
        let t = Table::from_csv_reader(
            "t.csv",
            "tokenizer,backbone,cfg,gfid\n\
             a,B,1.0,10\na,B,1.5,8\na,B,2.0,9\n\
             b,B,1.0,7\nb,B,1.5,7\nb,B,2.0,\n\
             a,XL,1.0,5\na,XL,1.5,6\n"
                .as_bytes(),
        )
        .unwrap();
        let s = select(&t, 0, 3, false, &[1], Some(2)).unwrap();
        assert_eq!(s.groups.len(), 2);
        let (g, rows) = &s.groups[0];
        assert_eq!(g.label(), "backbone=B");
        let picked: Vec<(String, usize)> = rows
            .iter()
            .map(|r| (r.tokenizer.clone(), r.index))
            .collect();
        // a: cfg 1.5 (8); b: first of the tie at 7 (cfg 1.0)
        assert_eq!(picked, [("a".into(), 1), ("b".into(), 3)]);
        assert_eq!(s.groups[1].1[0].index, 6);
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("1 of 8 rows have no `gfid` value"));
        // higher is better picks the maximum
        let s = select(&t, 0, 3, true, &[1], Some(2)).unwrap();
        assert_eq!(s.groups[0].1[0].index, 0);
        // no best-over: every row is a point, with a warning
        let s = select(&t, 0, 3, false, &[1], None).unwrap();
        assert_eq!(s.groups[0].1.len(), 5);
        assert!(s.warnings[1].contains("`a` (3 rows)"), "{:?}", s.warnings);
        // no grouping: one group
        let s = select(&t, 0, 3, false, &[], Some(2)).unwrap();
        assert_eq!(s.groups.len(), 1);
        assert_eq!(s.groups[0].0.label(), "all rows");
        assert_eq!(s.groups[0].1[0].index, 6);
    }
}
