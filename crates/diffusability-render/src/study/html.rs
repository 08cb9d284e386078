//! `report.html`: one self-contained page (no scripts or styles from the network) that shows the ranking,
//! the heatmap, each group's scatter panels and bubble chart, the tables and the warnings. The figures are
//! referenced as sibling SVG files, with links to their PNG versions.
//!
//! A small inline script sets `data-images-loaded="LOADED/TOTAL"` on `<body>` once the page has loaded,
//! so a headless browser can check that every figure decoded.

use diffusability::study::{Correlation, Study};

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn num(v: Option<f64>, decimals: usize) -> String {
    v.map_or("–".into(), |x| format!("{x:.decimals$}"))
}

fn p(v: Option<f64>) -> String {
    v.map_or("–".into(), |x| {
        if x != 0.0 && x < 1e-3 {
            format!("{x:.1e}")
        } else {
            format!("{x:.3}")
        }
    })
}

fn interval(v: Option<[f64; 2]>) -> String {
    v.map_or("–".into(), |[a, b]| format!("[{a:.2}, {b:.2}]"))
}

/// A figure block: the SVG shown, the PNG linked.
fn figure(stem: &str, alt: &str, caption: &str) -> String {
    format!(
        "<figure><img src=\"{s}.svg\" alt=\"{a}\" loading=\"eager\"><figcaption>{c} \
         <a href=\"{s}.png\">PNG</a> · <a href=\"{s}.svg\">SVG</a></figcaption></figure>\n",
        s = esc(stem),
        a = esc(alt),
        c = caption
    )
}

fn correlation_rows(cs: &[&Correlation]) -> String {
    let mut out = String::new();
    for c in cs {
        out.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><b>{}</b></td></tr>\n",
            esc(&c.metric),
            esc(&c.perspective),
            c.n,
            num(c.pearson_r, 3),
            p(c.pearson_p),
            interval(c.pearson_ci),
            num(c.spearman_rho, 3),
            p(c.spearman_p),
            num(c.kendall_tau, 3),
            p(c.kendall_p),
            interval(c.bootstrap_ci),
            interval(c.loo_range),
            c.aligned_r.map_or("–".into(), |v| format!("{v:+.3}")),
        ));
    }
    out
}

const STYLE: &str = "body{font-family:'DejaVu Sans',Verdana,sans-serif;margin:24px auto;max-width:1420px;\
color:#222;padding:0 16px;line-height:1.4}h1{font-size:24px;margin-bottom:4px}h2{font-size:19px;\
margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{font-size:16px}.meta{color:#666;font-size:13px}\
figure{margin:12px 0}figure img{max-width:100%;height:auto;border:1px solid #eee}figcaption{font-size:12px;color:#666}\
table{border-collapse:collapse;font-size:12.5px;margin:8px 0}th,td{border-bottom:1px solid #e6e6e6;padding:3px 8px;\
text-align:right}th{background:#f6f6f6}td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}\
.rank td:nth-child(3),.rank th:nth-child(3){text-align:left}.rankings{display:flex;flex-wrap:wrap;gap:28px}.warn li{font-size:13px;color:#8a4b00}code{font-size:12px}";

const SCRIPT: &str = "<script>\nwindow.addEventListener('load', function () {\n  var imgs = Array.prototype.slice.call(document.images);\n  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;\n  document.body.setAttribute('data-images-loaded', ok + '/' + imgs.length);\n});\n</script>\n";

/// The page. `scatter` and `bubble` give each group's figure stem (`None`: not drawn).
pub fn page(study: &Study, heatmap: &str, scatter: &[String], bubble: &[Option<String>]) -> String {
    let s = study;
    let pr = &s.params;
    let mut h = String::new();
    h.push_str(&format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>diffusability study: {t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>Which latent property predicts {t}?</h1>\n",
        t = esc(&pr.target)
    ));
    h.push_str(&format!(
        "<p class=\"meta\">diffusability {} · target <code>{}</code> ({} is better) · grouped by {} · {} · \
         {} metrics · Pearson, Spearman, Kendall tau-b (scipy defaults), {}% Fisher-z and bootstrap intervals \
         ({} resamples, seed {}) · aligned r: {}</p>\n",
        esc(&s.tool.version),
        esc(&pr.target),
        if pr.target_higher_is_better { "higher" } else { "lower" },
        if pr.group_by.is_empty() { "nothing (one group)".into() } else { esc(&pr.group_by.join(", ")) },
        pr.best_over
            .as_ref()
            .map_or("every row used".into(), |b| format!("best row per tokenizer over <code>{}</code>", esc(b))),
        pr.metrics.len(),
        (pr.confidence * 100.0).round(),
        pr.bootstrap,
        pr.seed,
        esc(pr.sign_convention),
    ));

    h.push_str("<h2>Perspective ranking</h2>\n<div class=\"rankings\">\n");
    for g in &s.groups {
        h.push_str(&format!(
            "<div><h3>{}</h3><table class=\"rank\"><tr><th>#</th><th>perspective</th><th>best metric</th><th>r</th><th>aligned r</th><th>n</th></tr>\n",
            esc(&g.group.label())
        ));
        for r in s.ranking.iter().filter(|r| r.group == g.group) {
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{:.3}</td><td>{:+.3}</td><td>{}</td></tr>\n",
                r.rank,
                esc(&r.perspective),
                esc(&r.metric),
                r.pearson_r,
                r.aligned_r,
                r.n
            ));
        }
        h.push_str("</table></div>\n");
    }
    h.push_str("</div>\n");

    h.push_str("<h2>Aligned correlation by group</h2>\n");
    h.push_str(&figure(
        heatmap,
        "heatmap of aligned Pearson r, metric by group",
        "Aligned Pearson r of each metric with the target in each group (cf. the study's Figures 5-6).",
    ));

    for (i, g) in s.groups.iter().enumerate() {
        h.push_str(&format!("<h2>{}</h2>\n", esc(&g.group.label())));
        h.push_str(&figure(
            &scatter[i],
            &format!("scatter panels of {} against each metric, {}", pr.target, g.group.label()),
            "Each metric against the target; line: least squares; ★ and frame: the best metric of its perspective \
             (cf. the study's Figure 4).",
        ));
        if let Some(b) = &bubble[i] {
            h.push_str(&figure(
                b,
                &format!("bubble chart of the best metric pair, {}", g.group.label()),
                "The best two-metric least-squares fit: axes are the two metrics, bubble size the target \
                 (cf. the study's Figure 8).",
            ));
        }
        let cs: Vec<&Correlation> = s
            .correlations
            .iter()
            .filter(|c| c.group == g.group)
            .collect();
        h.push_str(
            "<details open><summary>Correlations</summary><table><tr><th>metric</th><th>perspective</th><th>n</th>\
             <th>Pearson r</th><th>p</th><th>Fisher-z CI</th><th>Spearman ρ</th><th>p</th><th>Kendall τ<sub>b</sub></th>\
             <th>p</th><th>bootstrap CI</th><th>leave-one-out range</th><th>aligned r</th></tr>\n",
        );
        h.push_str(&correlation_rows(&cs));
        h.push_str("</table></details>\n");
        let pairs: Vec<_> = s
            .pairs
            .iter()
            .filter(|p| p.group == g.group)
            .take(10)
            .collect();
        if !pairs.is_empty() {
            h.push_str(
                "<details><summary>Best two-metric fits (top 10 by R²)</summary><table><tr><th>metrics</th>\
                 <th>n</th><th>R²</th><th>adjusted R²</th><th>leave-one-out R²</th></tr>\n",
            );
            for p in pairs {
                h.push_str(&format!(
                    "<tr><td><code>{}</code> + <code>{}</code></td><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{}</td></tr>\n",
                    esc(&p.metrics[0]),
                    esc(&p.metrics[1]),
                    p.n,
                    p.r2,
                    p.adj_r2,
                    num(p.loo_r2, 3)
                ));
            }
            h.push_str("</table></details>\n");
        }
    }

    h.push_str("<h2>Warnings</h2>\n");
    if s.warnings.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        h.push_str("<ul class=\"warn\">\n");
        for w in &s.warnings {
            h.push_str(&format!("<li>{}</li>\n", esc(w)));
        }
        h.push_str("</ul>\n");
    }
    h.push_str(
        "<p class=\"meta\">Files: <a href=\"correlations.csv\">correlations.csv</a> · <a href=\"pairs.csv\">pairs.csv</a> · \
         <a href=\"ranking.md\">ranking.md</a></p>\n",
    );
    h.push_str(SCRIPT);
    h.push_str("</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(esc("a<b & \"c\"'"), "a&lt;b &amp; &quot;c&quot;&#39;");
    }
}
