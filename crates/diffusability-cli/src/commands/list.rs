//! `diffusability list`: every metric with its perspective, direction, needs and parameters, from the
//! registry (the README's metric table is this command's `--markdown` output).

use crate::Failure;
use crate::output;
use diffusability::metrics::registry;

pub fn run(markdown: bool) -> Result<(), Failure> {
    let mut s = String::new();
    for (fam, m) in registry::metrics() {
        let better = if m.higher_is_better {
            "higher"
        } else {
            "lower"
        };
        let mut needs = Vec::new();
        if fam.needs.labels {
            needs.push("labels");
        }
        if fam.needs.masks {
            needs.push("masks");
        }
        let needs = if needs.is_empty() {
            "-".to_string()
        } else {
            needs.join(", ")
        };
        let set = if m.opt_in { "opt-in" } else { "default" };
        if markdown {
            s.push_str(&format!(
                "| `{}` | {} | {better} | {needs} | {set} | {} |\n",
                m.name,
                m.perspective.as_str(),
                m.help
            ));
        } else {
            s.push_str(&format!(
                "{:<22} {:<22} {better:<7} {needs:<14} {set:<8} {}\n",
                m.name,
                m.perspective.as_str(),
                m.help
            ));
        }
    }
    if !markdown {
        s.push_str("\nparameters (flag, default):\n");
        for p in registry::params() {
            s.push_str(&format!(
                "  {:<24} {:<10} {}\n",
                p.flag(),
                p.default_value().to_json(),
                p.help
            ));
        }
    }
    output::stdout(&s)?;
    Ok(())
}
