//! `diffusability study` as a user runs it: exit codes, stdout, stderr and the files of `-o DIR`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diffusability"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

fn demo() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden/study/demo.csv")
        .display()
        .to_string()
}

fn usage_error(args: &[&str], message: &str) {
    let o = run(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    assert!(
        stderr(&o).contains(message),
        "{args:?}: expected `{message}` in: {}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn json_output_has_the_documented_shape() {
    let o = run(&["study", &demo(), "--best-over", "cfg", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).is_empty(),
        "the demo table gives no warnings: {}",
        stderr(&o)
    );
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(!text.contains("NaN"));
    let v = json(&o);
    let cs = v["correlations"].as_array().unwrap();
    assert_eq!(cs.len(), 2 * 11);
    let c = &cs[0];
    assert_eq!(c["group"], serde_json::json!({"backbone": "SiT-B"}));
    assert_eq!(c["metric"], "viv");
    assert_eq!(c["perspective"], "velocity ambiguity");
    assert_eq!(c["target"], "gfid");
    assert_eq!(c["n"], 8);
    for k in [
        "pearson_r",
        "pearson_p",
        "spearman_rho",
        "spearman_p",
        "kendall_tau",
        "kendall_p",
        "aligned_r",
    ] {
        assert!(c[k].is_f64(), "{k}: {}", c[k]);
    }
    for k in ["pearson_ci", "bootstrap_ci", "loo_range"] {
        let a = c[k].as_array().unwrap();
        assert!(
            a.len() == 2 && a[0].as_f64().unwrap() <= a[1].as_f64().unwrap(),
            "{k}"
        );
    }
    let p = &v["pairs"][0];
    assert_eq!(p["group"]["backbone"], "SiT-B");
    assert_eq!(p["metrics"].as_array().unwrap().len(), 2);
    for k in ["r2", "adj_r2", "loo_r2"] {
        assert!(p[k].is_f64(), "{k}");
    }
    assert!(p["coef"]["intercept"].is_f64());
    assert_eq!(v["ranking"][0]["rank"], 1);
    assert_eq!(v["params"]["best_over"], "cfg");
    assert_eq!(v["params"]["group_by"], serde_json::json!(["backbone"]));
}

#[test]
fn summary_lists_every_group_and_the_ranking() {
    let o = run(&[
        "study",
        &demo(),
        "--best-over",
        "cfg",
        "--metrics",
        "viv,lnc,srss",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("== backbone=SiT-B (8 rows), target gfid"),
        "{out}"
    );
    assert!(out.contains("== backbone=LightningDiT-B (8 rows)"), "{out}");
    assert!(out.contains("ranking: 1. "), "{out}");
    assert!(out.contains("best pair: gfid ~ "), "{out}");
    assert!(
        !out.contains("uniformity"),
        "--metrics restricts the metrics: {out}"
    );
}

#[test]
fn output_directory_holds_tables_figures_and_page() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("study");
    let o = run(&[
        "study",
        &demo(),
        "--best-over",
        "cfg",
        "-o",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("wrote 14 files to"), "{}", stderr(&o));
    json(&o);
    for f in [
        "correlations.csv",
        "pairs.csv",
        "ranking.md",
        "heatmap.svg",
        "heatmap.png",
        "report.html",
    ] {
        assert!(out.join(f).exists(), "{f}");
    }
    let md = std::fs::read_to_string(out.join("ranking.md")).unwrap();
    assert!(
        md.contains("## backbone=SiT-B") && md.contains("| 1 |"),
        "{md}"
    );
}

#[test]
fn the_bootstrap_follows_the_seed() {
    let a = json(&run(&[
        "study",
        &demo(),
        "--best-over",
        "cfg",
        "--json",
        "--bootstrap",
        "300",
    ]));
    let b = json(&run(&[
        "study",
        &demo(),
        "--best-over",
        "cfg",
        "--json",
        "--bootstrap",
        "300",
    ]));
    let c = json(&run(&[
        "study",
        &demo(),
        "--best-over",
        "cfg",
        "--json",
        "--bootstrap",
        "300",
        "--seed",
        "5",
    ]));
    assert_eq!(a, b);
    assert_ne!(
        a["correlations"][0]["bootstrap_ci"],
        c["correlations"][0]["bootstrap_ci"]
    );
    assert_eq!(
        a["correlations"][0]["pearson_r"],
        c["correlations"][0]["pearson_r"]
    );
}

#[test]
fn warnings_go_to_stderr_unless_quiet() {
    // Without --best-over each tokenizer has three rows per backbone.
    let o = run(&["study", &demo(), "--json"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("warning: backbone=SiT-B: 8 tokenizer(s) have several rows"),
        "{}",
        stderr(&o)
    );
    assert_eq!(json(&o)["warnings"].as_array().unwrap().len(), 2);
    let o = run(&["study", &demo(), "--json", "--quiet"]);
    assert!(stderr(&o).is_empty());
}

#[test]
fn bad_usage_and_input_exit_2_with_a_message() {
    let demo = demo();
    usage_error(
        &["study"],
        "error: study: expected TABLE.csv, or --metrics-dir DIR --results FILE",
    );
    usage_error(
        &["study", &demo, "--metrics-dir", "d", "--results", "r.csv"],
        "not both",
    );
    usage_error(
        &["study", "--metrics-dir", "d"],
        "--metrics-dir needs --results FILE",
    );
    usage_error(
        &["study", &demo, "--metrics", "viv,vvi"],
        "--metrics: unknown metric `vvi`; expected one of: viv,",
    );
    usage_error(
        &["study", &demo, "--target", "gfid:best"],
        "expected `gfid:higher` or `gfid:lower`",
    );
    usage_error(
        &["study", &demo, "--target", "viv"],
        "--target viv: is a latent metric",
    );
    usage_error(
        &["study", &demo, "--target", "fid"],
        "no column `fid` (the --target quality column); the columns are: tokenizer,",
    );
    usage_error(
        &["study", &demo, "--best-over", "guidance"],
        "no column `guidance` (the --best-over column)",
    );
    usage_error(&["study", "nope.csv"], "error: nope.csv: table not found");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "tokenizer,viv,gfid\na,1,2\nb,oops,3\n").unwrap();
    usage_error(
        &["study", bad.to_str().unwrap()],
        &format!(
            "{}: line 3, column `viv`: expected a finite number, found `oops`",
            bad.display()
        ),
    );
}

fn write_report(dir: &Path, file: &str, name: &str, viv: f64, srss: f64) -> PathBuf {
    let p = dir.join(file);
    let v = serde_json::json!({
        "tool": {"name": "diffusability", "version": "0.1.0"},
        "input": {"name": name, "n": 100},
        "metrics": {"viv": viv, "srss": srss},
        "warnings": [],
    });
    std::fs::write(&p, v.to_string()).unwrap();
    p
}

#[test]
fn reports_directory_and_results_table() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    std::fs::create_dir(&reports).unwrap();
    let vals = [
        (1.0, 0.30),
        (2.0, 0.25),
        (3.5, 0.18),
        (4.0, 0.2),
        (5.5, 0.1),
    ];
    for (i, (viv, srss)) in vals.iter().enumerate() {
        write_report(&reports, &format!("tok{i}.json"), "latents", *viv, *srss);
    }
    let mut results = String::from("tokenizer,backbone,cfg,gfid,is\n");
    for i in 0..5 {
        for (cfg, extra) in [("1.5", 0.0), ("2.0", 1.0)] {
            results.push_str(&format!(
                "tok{i},SiT-B,{cfg},{},{}\n",
                5.0 + 2.0 * i as f64 + extra,
                200 - 20 * i
            ));
        }
    }
    let rpath = dir.path().join("results.csv");
    std::fs::write(&rpath, results).unwrap();
    let o = run(&[
        "study",
        "--metrics-dir",
        reports.to_str().unwrap(),
        "--results",
        rpath.to_str().unwrap(),
        "--best-over",
        "cfg",
        "--target",
        "is",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v = json(&o);
    let viv = &v["correlations"][0];
    assert_eq!(
        (viv["metric"].as_str(), viv["n"].as_u64()),
        (Some("viv"), Some(5))
    );
    // viv rises as IS falls: r < 0; lower-is-better metric against a higher-is-better target: aligned > 0
    assert!(viv["pearson_r"].as_f64().unwrap() < 0.0 && viv["aligned_r"].as_f64().unwrap() > 0.0);
    usage_error(
        &[
            "study",
            "--metrics-dir",
            dir.path().join("none").to_str().unwrap(),
            "--results",
            rpath.to_str().unwrap(),
        ],
        "none: metrics directory not found",
    );
}
