//! The JSON report: the contract scripts and `study --metrics-dir` read. Field names are fixed.

use crate::data::Dataset;
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Tool {
    pub name: String,
    pub version: String,
}

/// The `input` block: what was read, so a number can be traced to its data.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct InputBlock {
    pub name: String,
    pub paths: Vec<String>,
    pub key: String,
    pub n: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    /// Number of distinct labels, if labels were given.
    pub classes: Option<usize>,
    pub has_masks: bool,
    pub dtype: String,
    pub sha256: String,
    /// True when the report ran on the built-in example.
    pub example: bool,
}

impl InputBlock {
    pub fn of(data: &Dataset) -> InputBlock {
        let sh = data.latents.shape();
        InputBlock {
            name: data.source.name.clone(),
            paths: data.source.paths.clone(),
            key: data.source.key.clone(),
            n: sh.n,
            channels: sh.c,
            height: sh.h,
            width: sh.w,
            classes: data.labels.as_ref().map(|l| l.num_classes()),
            has_masks: data.masks.is_some(),
            dtype: data.source.dtype.clone(),
            sha256: data.source.sha256.clone(),
            example: data.source.example,
        }
    }
}

/// The report of one latent set.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    pub tool: Tool,
    pub input: InputBlock,
    pub params: Map<String, Value>,
    pub metrics: Map<String, Value>,
    pub details: Map<String, Value>,
    pub warnings: Vec<String>,
    pub timings_s: Map<String, Value>,
}

impl Report {
    pub fn new(input: InputBlock) -> Report {
        Report {
            tool: Tool {
                name: "diffusability".into(),
                version: crate::VERSION.into(),
            },
            input,
            params: Map::new(),
            metrics: Map::new(),
            details: Map::new(),
            warnings: Vec::new(),
            timings_s: Map::new(),
        }
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serializes")
    }

    /// The `name: value` lines printed by default.
    pub fn to_lines(&self) -> String {
        let mut s = String::new();
        for (k, v) in &self.metrics {
            s.push_str(&format!("{k}: {}\n", v));
        }
        s
    }
}
