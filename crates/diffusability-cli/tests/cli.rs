//! Runs the real binary: exit codes, stdout and stderr, as a user and a script see them.

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The default metrics include the uniformity family, whose default is 10 t-SNE maps of 10,000
/// points each (minutes): these tests, which check the report and not those metrics, use one small map.
const SMALL_TSNE: [&str; 4] = ["--tsne-samples", "500", "--uniformity-repeats", "1"];

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_diffusability"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

#[test]
fn example_runs_without_input() {
    let o = run(&[
        "metrics",
        "--json",
        "--threads",
        "1",
        SMALL_TSNE[0],
        SMALL_TSNE[1],
        SMALL_TSNE[2],
        SMALL_TSNE[3],
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = json(&o);
    assert_eq!(r["tool"]["name"], "diffusability");
    assert_eq!(r["input"]["example"], true);
    assert_eq!(r["input"]["n"], 2000);
    assert_eq!(r["input"]["classes"], 10);
    assert_eq!(r["input"]["has_masks"], true);
    assert_eq!(r["params"]["normalize"], "channel");
    assert_eq!(r["params"]["seed"], 0);
    assert!(r["timings_s"]["load"].is_number());
    assert!(stderr(&o).contains("built-in example"), "{}", stderr(&o));
    for (k, v) in r["metrics"].as_object().unwrap() {
        assert!(v.as_f64().is_some_and(f64::is_finite), "{k} = {v}");
    }
}

#[test]
fn lines_list_the_metrics_of_the_json() {
    let o = run(&[
        "metrics",
        "--quiet",
        SMALL_TSNE[0],
        SMALL_TSNE[1],
        SMALL_TSNE[2],
        SMALL_TSNE[3],
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).is_empty(), "--quiet printed: {}", stderr(&o));
    let j = json(&run(&[
        "metrics",
        "--json",
        "--quiet",
        SMALL_TSNE[0],
        SMALL_TSNE[1],
        SMALL_TSNE[2],
        SMALL_TSNE[3],
    ]));
    let keys: Vec<String> = stdout(&o)
        .lines()
        .map(|l| l.split(": ").next().unwrap().to_string())
        .collect();
    let want: Vec<String> = j["metrics"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, want);
    assert!(!keys.is_empty());
}

#[test]
fn results_do_not_depend_on_threads() {
    let a = json(&run(&[
        "metrics",
        "--json",
        "--quiet",
        "--threads",
        "1",
        SMALL_TSNE[0],
        SMALL_TSNE[1],
        SMALL_TSNE[2],
        SMALL_TSNE[3],
    ]));
    let b = json(&run(&[
        "metrics",
        "--json",
        "--quiet",
        "--threads",
        "2",
        SMALL_TSNE[0],
        SMALL_TSNE[1],
        SMALL_TSNE[2],
        SMALL_TSNE[3],
    ]));
    assert_eq!(a["metrics"], b["metrics"]);
    assert_eq!(a["details"], b["details"]);
    assert_eq!(a["input"], b["input"]);
}

#[test]
fn report_file_equals_json_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = run(&[
        "metrics",
        "--quiet",
        "--json",
        "-o",
        out.to_str().unwrap(),
        SMALL_TSNE[0],
        SMALL_TSNE[1],
        SMALL_TSNE[2],
        SMALL_TSNE[3],
    ]);
    assert_eq!(o.status.code(), Some(0));
    let file: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(file["metrics"], json(&o)["metrics"]);
}

#[test]
fn closed_stdout_pipe_is_a_clean_exit() {
    let mut child = bin()
        .args([
            "metrics",
            "--json",
            "--quiet",
            SMALL_TSNE[0],
            SMALL_TSNE[1],
            SMALL_TSNE[2],
            SMALL_TSNE[3],
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panick"), "{}", stderr(&o));
}

fn assert_usage_error(args: &[&str], needle: &str) {
    let o = run(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    assert!(!stderr(&o).contains("panick"));
}

#[test]
fn bad_options_exit_2_with_a_message() {
    assert_usage_error(
        &["metrics", "--metrics", "nope"],
        "--metrics: unknown metric `nope`",
    );
    assert_usage_error(
        &["metrics", "--normalize", "zscore"],
        "--normalize: expected channel, global, none, scale:F or stats:FILE, found `zscore`",
    );
    assert_usage_error(
        &["metrics", "--threads", "0"],
        "--threads: expected at least 1, found 0",
    );
    assert_usage_error(&["metrics", "--bogus"], "--bogus");
    assert_usage_error(
        &["metrics", "--labels", "x.npy"],
        "--labels and --masks need an INPUT",
    );
    assert_usage_error(
        &["metrics", "-o", "/nonexistent-dir/r.json"],
        "directory /nonexistent-dir does not exist",
    );
}

#[test]
fn missing_input_exits_2_naming_the_file() {
    let o = run(&["metrics", "/no/such/latents.npy"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/no/such/latents.npy"),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).starts_with("error: "), "{}", stderr(&o));
}

#[test]
fn synth_output_is_a_valid_input() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("s.npz");
    let f = f.to_str().unwrap();
    let o = run(&[
        "synth",
        "--classes",
        "3",
        "--per-class",
        "40",
        "--channels",
        "4",
        "--height",
        "8",
        "--width",
        "8",
        "-o",
        f,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(Path::new(f).exists());
    let o = run(&[
        "metrics",
        f,
        "--json",
        "--quiet",
        SMALL_TSNE[0],
        SMALL_TSNE[1],
        SMALL_TSNE[2],
        SMALL_TSNE[3],
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = json(&o);
    assert_eq!(r["input"]["n"], 120);
    assert_eq!(r["input"]["classes"], 3);
    assert_eq!(r["input"]["has_masks"], true);
    assert_eq!(r["input"]["example"], false);
    assert_eq!(r["input"]["name"], "s");
}

#[test]
fn readme_metric_table_is_the_registry() {
    let o = run(&["list", "--markdown"]);
    assert_eq!(o.status.code(), Some(0));
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    assert!(
        readme.contains(&stdout(&o)),
        "README.md's metric table is out of date; replace it with `diffusability list --markdown`:\n{}",
        stdout(&o)
    );
}
