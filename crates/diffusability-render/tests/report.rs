//! The study report as files, and `report.html` opened in headless Chromium with every image loaded.
//!
//! The browser test needs `/usr/bin/chromium` (Debian package `chromium`, installed by `.ci/run`) or
//! `DIFFUSABILITY_CHROMIUM=PATH`; without one it fails, unless `DIFFUSABILITY_SKIP_BROWSER=1`.

use diffusability::study::{Options, Study, Table, analyze};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn demo_study() -> Study {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/study/demo.csv");
    let table = Table::read_csv(&path).expect("demo table");
    let opts = Options {
        group_by: vec!["backbone".into()],
        best_over: Some("cfg".into()),
        bootstrap: 200,
        ..Options::default()
    };
    analyze(&table, &opts).expect("demo analysis")
}

fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(
        &b[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let be = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    (be(16), be(20))
}

#[test]
fn every_output_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let study = demo_study();
    let written = diffusability_render::study::write_report(&study, dir.path()).unwrap();
    let names: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "correlations.csv",
        "pairs.csv",
        "ranking.md",
        "heatmap.svg",
        "heatmap.png",
        "scatter_sit-b.svg",
        "scatter_sit-b.png",
        "scatter_lightningdit-b.svg",
        "scatter_lightningdit-b.png",
        "bubble_sit-b.svg",
        "bubble_sit-b.png",
        "bubble_lightningdit-b.svg",
        "bubble_lightningdit-b.png",
        "report.html",
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing from {names:?}"
        );
        assert!(
            dir.path().join(want).metadata().unwrap().len() > 0,
            "{want} is empty"
        );
    }
    assert_eq!(names.len(), 14);
    // 11 metrics in 4 columns: 3 rows of panels
    assert_eq!(
        png_size(&dir.path().join("scatter_sit-b.png")),
        (4 * 340 + 20, 3 * 290 + 78)
    );
    let svg = std::fs::read_to_string(dir.path().join("heatmap.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("LightningDiT-B") && svg.contains("+0.85"));
    let csv = std::fs::read_to_string(dir.path().join("correlations.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 2 * 11);
    assert!(csv.starts_with("backbone,metric,perspective,higher_is_better,target,n,"));
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    for img in [
        "heatmap.svg",
        "scatter_sit-b.svg",
        "bubble_lightningdit-b.svg",
    ] {
        assert!(html.contains(&format!("src=\"{img}\"")), "{img} not shown");
    }
    assert_eq!(html.matches("<img ").count(), 5);
}

#[test]
fn group_names_are_escaped_and_file_names_are_safe() {
    let text = "tokenizer,backbone,viv,lnc,gfid\n\
                a,<b>&x,1,0.5,3\nb,<b>&x,2,0.4,4\nc,<b>&x,3,0.45,6\nd,<b>&x,4,0.2,5\n";
    let table = Table::from_csv_reader("t.csv", text.as_bytes()).unwrap();
    let study = analyze(&table, &Options::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    diffusability_render::study::write_report(&study, dir.path()).unwrap();
    assert!(dir.path().join("scatter_b-x.svg").exists());
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("backbone=&lt;b&gt;&amp;x") && !html.contains("<b>&x"));
}

fn chromium() -> Option<PathBuf> {
    let p = std::env::var_os("DIFFUSABILITY_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    p.exists().then_some(p)
}

/// Runs headless Chromium on `url` with `extra` arguments and a fresh profile; returns stdout.
fn run_chromium(bin: &Path, profile: &Path, url: &str, extra: &[&str]) -> String {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    // Read stdout on a thread so a full pipe cannot block the browser; give up after two minutes.
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).ok();
        s
    });
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            child.kill().ok();
            panic!("chromium did not finish within 120 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

#[test]
fn report_renders_in_chromium_with_every_image_loaded() {
    let Some(bin) = chromium() else {
        if std::env::var("DIFFUSABILITY_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("skipped: no chromium and DIFFUSABILITY_SKIP_BROWSER=1");
            return;
        }
        panic!(
            "this test opens report.html in headless Chromium: install the Debian package `chromium` \
             (.ci/run does), point DIFFUSABILITY_CHROMIUM at a Chromium binary, or set \
             DIFFUSABILITY_SKIP_BROWSER=1 to skip it"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    diffusability_render::study::write_report(&demo_study(), &out).unwrap();
    let url = format!("file://{}", out.join("report.html").display());

    let profile = tempfile::tempdir().unwrap();
    let dom = run_chromium(&bin, profile.path(), &url, &["--dump-dom"]);
    let body = dom
        .split("<body")
        .nth(1)
        .and_then(|b| b.split('>').next())
        .unwrap_or_else(|| panic!("no <body> in Chromium's DOM:\n{dom}"));
    assert!(
        body.contains("data-images-loaded=\"5/5\""),
        "not every image loaded: <body{body}>"
    );

    let profile = tempfile::tempdir().unwrap();
    let shot = dir.path().join("report.png");
    run_chromium(
        &bin,
        profile.path(),
        &url,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1400,2000",
        ],
    );
    assert_eq!(png_size(&shot), (1400, 2000));
    // A page of text and figures compresses far less than a blank one (~10 kB).
    assert!(
        shot.metadata().unwrap().len() > 100_000,
        "the screenshot looks blank"
    );
    if let Some(keep) = std::env::var_os("DIFFUSABILITY_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
