//! The study analysis against scipy.stats and numpy (tests/oracles/study.py), on tables written here:
//! continuous values, ties, tiny groups, Kendall's exact and asymptotic regimes; plus row selection,
//! sign alignment, determinism and degenerate inputs.

use crate::common::{oracle, workspace_root};
use diffusability::study::{Group, Options, Study, Table, analyze};
use rand::Rng;
use serde_json::Value;
use std::path::Path;

/// Correlations, p-values and Fisher intervals: scipy computes them in f64 from the same inputs with
/// the same formulas (beta / t / normal tails); differences come from summation order and the special
/// functions' last digits, far below 1e-9. Tiny p-values are also checked relative to their size.
const TOL: f64 = 1e-9;

fn write_table(dir: &Path, name: &str, header: &str, rows: &[String]) -> std::path::PathBuf {
    let p = dir.join(name);
    let mut s = format!("{header}\n");
    for r in rows {
        s.push_str(r);
        s.push('\n');
    }
    std::fs::write(&p, s).unwrap();
    p
}

fn group_of(v: &Value) -> Group {
    Group(
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect(),
    )
}

fn close(what: &str, ours: Option<f64>, want: &Value) {
    match (ours, want.as_f64()) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            let d = (a - b).abs();
            assert!(d <= TOL, "{what}: ours {a:e}, scipy {b:e} (diff {d:e})");
            if b.abs() < 1e-3 && b != 0.0 {
                assert!(
                    d / b.abs() <= 1e-6,
                    "{what}: ours {a:e}, scipy {b:e}: relative {:e}",
                    d / b.abs()
                );
            }
        }
        (a, _) => panic!("{what}: ours {a:?}, scipy {want}"),
    }
}

/// Every correlation and pair of the oracle equals ours; the two list the same groups and metrics.
fn compare(study: &Study, want: &Value) -> usize {
    let mut checked = 0;
    let wc = want["correlations"].as_array().unwrap();
    assert_eq!(
        wc.len(),
        study.correlations.len(),
        "number of (group, metric) entries"
    );
    for w in wc {
        let g = group_of(&w["group"]);
        let m = w["metric"].as_str().unwrap();
        let c = study
            .correlation(&g, m)
            .unwrap_or_else(|| panic!("no correlation for {} / {m}", g.label()));
        let at = format!("{} / {m}", g.label());
        assert_eq!(c.n as u64, w["n"].as_u64().unwrap(), "{at}: n");
        close(&format!("{at} pearson_r"), c.pearson_r, &w["pearson_r"]);
        close(&format!("{at} pearson_p"), c.pearson_p, &w["pearson_p"]);
        close(
            &format!("{at} pearson_ci lo"),
            c.pearson_ci.map(|v| v[0]),
            &w["pearson_ci"][0],
        );
        close(
            &format!("{at} pearson_ci hi"),
            c.pearson_ci.map(|v| v[1]),
            &w["pearson_ci"][1],
        );
        close(
            &format!("{at} spearman_rho"),
            c.spearman_rho,
            &w["spearman_rho"],
        );
        close(&format!("{at} spearman_p"), c.spearman_p, &w["spearman_p"]);
        close(
            &format!("{at} kendall_tau"),
            c.kendall_tau,
            &w["kendall_tau"],
        );
        close(&format!("{at} kendall_p"), c.kendall_p, &w["kendall_p"]);
        close(&format!("{at} aligned_r"), c.aligned_r, &w["aligned_r"]);
        close(
            &format!("{at} loo lo"),
            c.loo_range.map(|v| v[0]),
            &w["loo_range"][0],
        );
        close(
            &format!("{at} loo hi"),
            c.loo_range.map(|v| v[1]),
            &w["loo_range"][1],
        );
        if c.pearson_r.is_some() {
            checked += 1;
        }
    }
    let wp = want["pairs"].as_array().unwrap();
    assert_eq!(wp.len(), study.pairs.len(), "number of fitted pairs");
    for w in wp {
        let g = group_of(&w["group"]);
        let (a, b) = (
            w["metrics"][0].as_str().unwrap(),
            w["metrics"][1].as_str().unwrap(),
        );
        let p = study
            .pairs
            .iter()
            .find(|p| p.group == g && p.metrics == [a.to_string(), b.to_string()])
            .unwrap_or_else(|| panic!("no pair {a}+{b} in {}", g.label()));
        let at = format!("{} / {a}+{b}", g.label());
        assert_eq!(p.n as u64, w["n"].as_u64().unwrap());
        // R^2 values from a QR of the centred design vs numpy's SVD lstsq: both backward stable on
        // well-conditioned designs, agreeing to ~1e-13.
        close(&format!("{at} r2"), Some(p.r2), &w["r2"]);
        close(&format!("{at} adj_r2"), Some(p.adj_r2), &w["adj_r2"]);
        close(&format!("{at} loo_r2"), p.loo_r2, &w["loo_r2"]);
        for k in ["intercept", a, b] {
            let (ours, theirs) = (p.coef[k].as_f64().unwrap(), w["coef"][k].as_f64().unwrap());
            assert!(
                (ours - theirs).abs() <= 1e-9 * theirs.abs().max(1.0),
                "{at} coef {k}: {ours} vs {theirs}"
            );
        }
    }
    checked
}

fn run(path: &Path, opts: &Options, oracle_args: &[&str]) -> (Study, Value) {
    let table = Table::read_csv(path).unwrap();
    let study = analyze(&table, opts).unwrap();
    let mut args = vec![path.to_str().unwrap()];
    args.extend_from_slice(oracle_args);
    let want = oracle("study.py", &args);
    (study, want)
}

fn opts(group_by: &[&str], best_over: Option<&str>) -> Options {
    Options {
        group_by: group_by.iter().map(|s| s.to_string()).collect(),
        best_over: best_over.map(str::to_string),
        bootstrap: 200,
        ..Options::default()
    }
}

/// `tokenizers` x 2 backbones x 3 CFG scales. Continuous values, or with `ties` values snapped to coarse
/// steps so that every column has many ties (but none is constant).
fn continuous_rows(rng: &mut impl Rng, tokenizers: usize, ties: bool) -> Vec<String> {
    let snap = |v: f64, step: f64| if ties { (v / step).round() * step } else { v };
    let mut rows = Vec::new();
    for t in 0..tokenizers {
        let q: f64 = rng.random_range(0.0..1.0);
        let viv = snap(
            1000.0 + 400.0 * q + 60.0 * rng.random_range(-1.0..1.0),
            50.0,
        );
        let lnc = snap(0.7 - 0.3 * q + 0.08 * rng.random_range(-1.0..1.0), 0.1);
        let srss = snap(0.2 - 0.1 * q + 0.05 * rng.random_range(-1.0..1.0), 0.05);
        let sec = snap(rng.random_range(0.1..0.5), 0.1);
        let ent = snap(3.0 + rng.random_range(-1.0..1.0), 0.5);
        for (bb, off) in [("SiT-B", 20.0), ("LightningDiT-B", 10.0)] {
            for (cfg, c) in [("1.0", 4.0), ("1.5", 0.0), ("2.0", 1.5)] {
                let gfid = snap(off + c + 15.0 * q + 3.0 * rng.random_range(-1.0..1.0), 1.0);
                let is = snap(200.0 - 80.0 * q + rng.random_range(-10.0..10.0), 10.0);
                rows.push(format!(
                    "tok{t:02},conv,c{},{bb},{cfg},{viv},{lnc},{srss},{sec},{ent},{gfid},{is}",
                    t % 3
                ));
            }
        }
    }
    rows
}

const HEADER: &str =
    "tokenizer,family,cluster,backbone,cfg,viv,lnc,srss,sec,uniformity_entropy,gfid,is";

#[test]
fn correlations_and_pairs_equal_scipy_and_numpy() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = diffusability::stats::rng::stream(7, "study-test");
    let path = write_table(
        dir.path(),
        "t.csv",
        HEADER,
        &continuous_rows(&mut rng, 24, false),
    );
    let (study, want) = run(
        &path,
        &opts(&["backbone"], Some("cfg")),
        &["--group-by", "backbone", "--best-over", "cfg"],
    );
    assert_eq!(compare(&study, &want), 2 * 5);
    assert!(
        study
            .correlations
            .iter()
            .all(|c| c.n == 24 && c.kendall_method == Some("exact"))
    );
    assert_eq!(study.pairs.len(), 2 * 10);
    // The higher-is-better target flips every aligned sign.
    let mut o = opts(&["backbone"], Some("cfg"));
    o.target = "is".parse().unwrap();
    let (study, want) = run(
        &path,
        &o,
        &[
            "--target",
            "is",
            "--group-by",
            "backbone",
            "--best-over",
            "cfg",
        ],
    );
    assert_eq!(compare(&study, &want), 10);
}

#[test]
fn ties_use_average_ranks_and_the_tie_corrected_kendall_variance() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = diffusability::stats::rng::stream(8, "study-test");
    let path = write_table(
        dir.path(),
        "t.csv",
        HEADER,
        &continuous_rows(&mut rng, 30, true),
    );
    let (study, want) = run(
        &path,
        &opts(&["backbone", "cfg"], None),
        &["--group-by", "backbone", "--group-by", "cfg"],
    );
    assert_eq!(compare(&study, &want), 6 * 5);
    let asym = study
        .correlations
        .iter()
        .filter(|c| c.kendall_method == Some("asymptotic"))
        .count();
    assert!(
        asym >= 20,
        "ties should force the asymptotic p-value: {asym}"
    );
}

#[test]
fn tiny_groups_and_kendall_regimes() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = diffusability::stats::rng::stream(9, "study-test");
    let mut rows = Vec::new();
    // group sizes: 3 and 4 (tiny), 33 (largest exact), 40 (asymptotic), 40 nearly sorted (exact: one
    // discordant pair), 12 with heavy ties
    let sizes = [
        ("n3", 3),
        ("n4", 4),
        ("n33", 33),
        ("n40", 40),
        ("sorted40", 40),
        ("ties12", 12),
    ];
    for (g, n) in sizes {
        for t in 0..n {
            let (x, y) = match g {
                "sorted40" => {
                    let y = t as f64 + if t == 5 { 1.5 } else { 0.0 };
                    (t as f64 * 0.01, y)
                }
                "ties12" => ((t % 3) as f64, (t / 4) as f64),
                _ => {
                    let x: f64 = rng.random_range(0.0..1.0);
                    (x, 10.0 + 5.0 * x + rng.random_range(-2.0..2.0))
                }
            };
            rows.push(format!("tok{t},{g},{x},{},{y}", 1.0 - x * x));
        }
    }
    let path = write_table(
        dir.path(),
        "t.csv",
        "tokenizer,backbone,viv,lnc,gfid",
        &rows,
    );
    let (study, want) = run(
        &path,
        &opts(&["backbone"], None),
        &["--group-by", "backbone"],
    );
    assert_eq!(compare(&study, &want), 2 * sizes.len());
    let method = |g: &str| {
        study
            .correlation(&Group(vec![("backbone".into(), g.into())]), "viv")
            .unwrap()
            .kendall_method
    };
    assert_eq!(method("n33"), Some("exact"));
    assert_eq!(method("n40"), Some("asymptotic"));
    assert_eq!(method("sorted40"), Some("exact"));
    assert_eq!(method("ties12"), Some("asymptotic"));
    let n3 = study
        .correlation(&Group(vec![("backbone".into(), "n3".into())]), "viv")
        .unwrap();
    assert_eq!(
        n3.pearson_ci,
        Some([-1.0, 1.0]),
        "scipy's interval for n = 3"
    );
    assert_eq!(n3.loo_range, None);
    assert!(
        study
            .warnings
            .iter()
            .any(|w| w.contains("backbone=n3: metric `viv` has only 3 rows"))
    );
}

#[test]
fn bootstrap_is_deterministic_and_matches_numpy_statistically() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = diffusability::stats::rng::stream(10, "study-test");
    let path = write_table(
        dir.path(),
        "t.csv",
        HEADER,
        &continuous_rows(&mut rng, 24, false),
    );
    let table = Table::read_csv(&path).unwrap();
    let mut o = opts(&["backbone"], Some("cfg"));
    o.bootstrap = 4000;
    let a = analyze(&table, &o).unwrap();
    let b = analyze(&table, &o).unwrap();
    assert_eq!(a, b, "same seed, same study");
    o.seed = 1;
    let c = analyze(&table, &o).unwrap();
    assert_ne!(
        a.correlations[0].bootstrap_ci,
        c.correlations[0].bootstrap_ci
    );
    let want = oracle(
        "study.py",
        &[
            path.to_str().unwrap(),
            "--group-by",
            "backbone",
            "--best-over",
            "cfg",
            "--bootstrap",
            "4000",
        ],
    );
    // Different generators: the 2.5 % / 97.5 % percentiles of 4000 resamples of r (n = 24) have a Monte
    // Carlo standard error near 0.01; 0.05 is five of them.
    for w in want["correlations"].as_array().unwrap() {
        let c = a
            .correlation(&group_of(&w["group"]), w["metric"].as_str().unwrap())
            .unwrap();
        let ci = c.bootstrap_ci.unwrap();
        for k in 0..2 {
            let theirs = w["bootstrap_ci"][k].as_f64().unwrap();
            assert!(
                (ci[k] - theirs).abs() < 0.05,
                "{} bootstrap {k}: {} vs {theirs}",
                c.metric,
                ci[k]
            );
        }
        assert!(ci[0] <= c.pearson_r.unwrap() && c.pearson_r.unwrap() <= ci[1]);
    }
}

#[test]
fn best_over_cfg_and_grouping_select_the_right_rows() {
    let text = "tokenizer,family,backbone,cfg,viv,gfid\n\
                a,f1,B,1.0,1,9\na,f1,B,1.5,1,7\na,f1,B,2.0,1,8\n\
                b,f1,B,1.0,2,6\nb,f1,B,1.5,2,5\nb,f1,B,2.0,2,5.5\n\
                c,f2,B,1.0,3,4\nc,f2,B,1.5,3,3.5\nc,f2,B,2.0,3,3\n\
                a,f1,XL,1.5,1,30\nb,f1,XL,1.5,2,20\nc,f2,XL,1.5,3,25\n";
    let table = Table::from_csv_reader("t.csv", text.as_bytes()).unwrap();
    let s = analyze(&table, &opts(&[], Some("cfg"))).unwrap();
    assert_eq!(
        s.params.group_by,
        ["backbone"],
        "backbone is the default grouping"
    );
    let b = &s.groups[0];
    let kept: Vec<(&str, f64, &str)> = b
        .points
        .iter()
        .map(|p| {
            (
                p.tokenizer.as_str(),
                p.target,
                p.best_over.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kept,
        [("a", 7.0, "1.5"), ("b", 5.0, "1.5"), ("c", 3.0, "2.0")]
    );
    assert_eq!(
        b.points[2].colour.as_deref(),
        Some("f2"),
        "family colours without a cluster column"
    );
    // viv (lower is better) against gfid (lower is better): perfect positive r, aligned +1.
    let c = s.correlation(&b.group, "viv").unwrap();
    assert!((c.pearson_r.unwrap() + 1.0).abs() < 1e-12, "{c:?}");
    assert!((c.aligned_r.unwrap() + 1.0).abs() < 1e-12);
    // higher-is-better target picks the largest value
    let mut o = opts(&["none"], Some("cfg"));
    o.target = "gfid:higher".parse().unwrap();
    let s = analyze(&table, &o).unwrap();
    assert_eq!(s.groups.len(), 1);
    let kept: Vec<f64> = s.groups[0].points.iter().map(|p| p.target).collect();
    assert_eq!(kept, [30.0, 20.0, 25.0]);
    // grouping by family and backbone
    let s = analyze(&table, &opts(&["family", "backbone"], Some("cfg"))).unwrap();
    let labels: Vec<String> = s.groups.iter().map(|g| g.group.label()).collect();
    assert_eq!(
        labels,
        [
            "family=f1, backbone=B",
            "family=f2, backbone=B",
            "family=f1, backbone=XL",
            "family=f2, backbone=XL"
        ]
    );
    assert_eq!(s.groups[0].points.len(), 2);
}

#[test]
fn sign_alignment_uses_each_metrics_direction() {
    // lnc (higher is better) falls as gfid rises: r < 0, aligned > 0. sec (lower is better) rises with
    // gfid: r > 0, aligned > 0. With `is` (higher is better) as target, signs of r flip, aligned stay.
    let text = "tokenizer,lnc,sec,gfid,is\na,0.9,0.1,2,300\nb,0.7,0.2,4,250\nc,0.6,0.35,5,180\nd,0.4,0.4,9,100\n";
    let table = Table::from_csv_reader("t.csv", text.as_bytes()).unwrap();
    let s = analyze(&table, &opts(&[], None)).unwrap();
    let g = Group::default();
    let lnc = s.correlation(&g, "lnc").unwrap();
    let sec = s.correlation(&g, "sec").unwrap();
    assert!(lnc.pearson_r.unwrap() < 0.0 && lnc.aligned_r.unwrap() > 0.0);
    assert!(sec.pearson_r.unwrap() > 0.0 && sec.aligned_r.unwrap() > 0.0);
    assert_eq!(lnc.aligned_r, lnc.pearson_r.map(|r| -r));
    let mut o = opts(&[], None);
    o.target = "is".parse().unwrap();
    let s = analyze(&table, &o).unwrap();
    let lnc = s.correlation(&g, "lnc").unwrap();
    assert!(lnc.pearson_r.unwrap() > 0.0 && lnc.aligned_r == lnc.pearson_r);
}

#[test]
fn degenerate_inputs_give_warnings_and_nulls_not_nan() {
    let text = "tokenizer,backbone,viv,lnc,srss,gfid\n\
                a,B,1,0.5,0.1,9\nb,B,2,0.5,,7\nc,B,3,0.5,0.3,8\nd,B,4,0.5,NA,5\ne,B,5,0.5,0.2,6\n\
                a,XL,1,0.5,0.1,9\nb,XL,2,0.6,0.2,7\n\
                a,L,1,0.5,0.1,3\nb,L,2,0.6,0.2,3\nc,L,3,0.7,0.3,3\n";
    let table = Table::from_csv_reader("t.csv", text.as_bytes()).unwrap();
    let s = analyze(&table, &opts(&["backbone"], None)).unwrap();
    let json = s.to_json_pretty();
    assert!(
        !json.contains("NaN") && !json.contains("nan") && !json.contains("inf"),
        "{json}"
    );
    let v: Value = serde_json::from_str(&json).unwrap();
    let w = &s.warnings;
    let has = |needle: &str| {
        assert!(
            w.iter().any(|x| x.contains(needle)),
            "no `{needle}` in {w:#?}"
        )
    };
    has("backbone=B: metric `lnc` is the same (0.5) in all 5 rows: no correlation");
    has("backbone=B: metric `srss` has no value in 2 of 5 rows; they are left out of its analysis");
    has(
        "backbone=XL: metric `viv` has 2 row(s) with values, at least 3 are needed: no correlation",
    );
    has("backbone=L: `gfid` is the same (3) in all 3 rows: no correlation or regression");
    let b = Group(vec![("backbone".into(), "B".into())]);
    let lnc = s.correlation(&b, "lnc").unwrap();
    assert_eq!((lnc.pearson_r, lnc.aligned_r, lnc.n), (None, None, 5));
    let srss = s.correlation(&b, "srss").unwrap();
    assert_eq!((srss.n, srss.missing), (3, 2));
    assert!(srss.pearson_r.is_some() && srss.loo_range.is_none());
    let entry = v["correlations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["group"]["backbone"] == "XL" && c["metric"] == "viv")
        .unwrap();
    assert!(entry["pearson_r"].is_null() && entry["bootstrap_ci"].is_null());
    // the pair viv+srss has 3 complete rows in B: too few for a regression, said once
    has("backbone=B: 1 metric pair(s) have fewer than 4 rows with both values: no regression");
    assert!(s.pairs.is_empty());
}

#[test]
fn bad_tables_fail_with_clear_messages() {
    let t = |text: &str| Table::from_csv_reader("t.csv", text.as_bytes()).unwrap();
    let err = |table: &Table, o: &Options| analyze(table, o).unwrap_err().message;
    assert_eq!(
        err(&t("tokenizer,viv\na,1\n"), &opts(&[], None)),
        "t.csv: no column `gfid` (the --target quality column); the columns are: tokenizer, viv"
    );
    assert_eq!(
        err(&t("tokenizer,viv,gfid\na,1,x\n"), &opts(&[], None)),
        "t.csv: line 2, column `gfid`: expected a finite number, found `x`"
    );
    assert_eq!(
        err(&t("tokenizer,foo,gfid\na,1,2\n"), &opts(&[], None)),
        "t.csv: no metric column with values, expected at least one of: viv, viv_per_dim, viv_logit_normal, \
         viv_marginal, viv_total_variance, viv_anisotropy, lnc, linear_probe_acc, lds, cds, srss, rmsc, sec, \
         local_corr, uniformity_cv, uniformity_gini, uniformity_entropy, equiv_rel_err, equiv_cos, ifid"
    );
    assert_eq!(
        err(&t("tokenizer,viv,gfid\na,1,2\n"), &opts(&["family"], None)),
        "t.csv: no column `family` (a --group-by column); the columns are: tokenizer, viv, gfid"
    );
    assert_eq!(
        err(&t("tokenizer,viv,gfid\na,1,2\n"), &opts(&[], Some("cfg"))),
        "t.csv: no column `cfg` (the --best-over column); the columns are: tokenizer, viv, gfid"
    );
    let mut o = opts(&[], None);
    o.metrics = Some(vec!["lnc".into()]);
    assert_eq!(
        err(&t("tokenizer,viv,gfid\na,1,2\n"), &o),
        "t.csv: no column `lnc` (named in --metrics); the columns are: tokenizer, viv, gfid"
    );
    assert_eq!(
        "gfid:best"
            .parse::<diffusability::study::Target>()
            .unwrap_err()
            .message,
        "--target gfid:best: expected `gfid:higher` or `gfid:lower`, found direction `best`"
    );
    // an unknown column is reported, not silently dropped
    let s = analyze(
        &t("tokenizer,viv,vvi,gfid\na,1,1,2\nb,2,1,3\nc,3,2,1\n"),
        &opts(&[], None),
    )
    .unwrap();
    assert!(
        s.warnings[0].contains("column `vvi` is neither a metric"),
        "{:?}",
        s.warnings
    );
}

#[test]
fn reports_directory_joins_with_results() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    let report = |name: &str, input_name: &str, viv: f64, lnc: f64| {
        let v = serde_json::json!({
            "tool": {"name": "diffusability", "version": "0.1.0"},
            "input": {"name": input_name},
            "metrics": {"viv": viv, "lnc": lnc},
        });
        std::fs::write(reports.join(name), v.to_string()).unwrap();
    };
    report("tokA.json", "latents", 1.0, 0.9);
    report("run2.json", "tokB", 2.0, 0.7); // matched by input.name
    report("tokC.json", "tokC", 3.0, 0.6);
    report("orphan.json", "orphan", 9.0, 0.1);
    let results = write_table(
        dir.path(),
        "results.csv",
        "tokenizer,backbone,cfg,gfid",
        &[
            "tokA,B,1.5,3".into(),
            "tokB,B,1.5,5".into(),
            "tokC,B,1.5,6".into(),
            "tokD,B,1.5,7".into(),
        ],
    );
    let (table, warnings) = Table::from_reports(&reports, &results).unwrap();
    assert_eq!(
        table.columns,
        ["tokenizer", "backbone", "cfg", "gfid", "viv", "lnc"]
    );
    assert_eq!(table.len(), 3);
    assert_eq!(table.number(1, 4).unwrap(), Some(2.0));
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("orphan.json: no row of"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("1 row(s) of") && warnings[1].contains("tokD"),
        "{warnings:?}"
    );
    let s = analyze(&table, &opts(&[], None)).unwrap();
    assert_eq!(s.correlations.len(), 2);
    // a second report for one tokenizer is an error
    report("dup.json", "tokA", 1.0, 0.9);
    let e = Table::from_reports(&reports, &results).unwrap_err();
    assert!(
        e.message
            .contains("is a second report for tokenizer `tokA`"),
        "{}",
        e.message
    );
}

#[test]
fn demo_table_is_what_its_script_makes() {
    // tests/golden/study/demo.csv is synthetic (make_demo.py); it must analyse without errors.
    let path = workspace_root().join("tests/golden/study/demo.csv");
    let table = Table::read_csv(&path).unwrap();
    let s = analyze(&table, &opts(&["backbone"], Some("cfg"))).unwrap();
    assert_eq!(s.groups.len(), 2);
    assert!(s.groups.iter().all(|g| g.points.len() == 8));
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
}
