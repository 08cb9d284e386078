//! Typed, validated metric parameters. A parameter's name is its identity everywhere: key `lnc_k`,
//! flag `--lnc-k`, Python keyword `lnc_k=`.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// The type and valid range of a parameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamKind {
    /// An integer in `min..=max`.
    Int { min: i64, max: i64 },
    /// A finite float in `min..=max`, or `min < x <= max` when `open_min`.
    Float { min: f64, max: f64, open_min: bool },
    /// One of the listed words.
    Choice(&'static [&'static str]),
    /// A file path; the default is "no file".
    Path,
}

/// A parameter value.
#[derive(Clone, Debug, PartialEq)]
pub enum ParamValue {
    Int(i64),
    Float(f64),
    Str(String),
    /// An optional path (`None` = not given).
    Path(Option<String>),
}

impl ParamValue {
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            ParamValue::Int(v) => (*v).into(),
            ParamValue::Float(v) => (*v).into(),
            ParamValue::Str(s) => s.clone().into(),
            ParamValue::Path(p) => p.clone().map_or(serde_json::Value::Null, Into::into),
        }
    }
}

/// A parameter's declaration: name, type, default and help.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: ParamKind,
    pub default: DefaultValue,
    pub help: &'static str,
}

/// A compile-time default.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DefaultValue {
    Int(i64),
    Float(f64),
    Str(&'static str),
    NoPath,
}

impl ParamSpec {
    /// The command-line flag: `lnc_k` -> `--lnc-k`.
    pub fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }

    pub fn default_value(&self) -> ParamValue {
        match self.default {
            DefaultValue::Int(v) => ParamValue::Int(v),
            DefaultValue::Float(v) => ParamValue::Float(v),
            DefaultValue::Str(s) => ParamValue::Str(s.to_string()),
            DefaultValue::NoPath => ParamValue::Path(None),
        }
    }

    /// Parses and validates a value given as text (a flag's argument).
    pub fn parse(&self, text: &str) -> Result<ParamValue> {
        let flag = self.flag();
        match self.kind {
            ParamKind::Int { .. } => {
                let v: i64 = text.trim().parse().map_err(|_| {
                    Error::usage(format!("{flag}: expected an integer, found `{text}`"))
                })?;
                self.check_int(v)?;
                Ok(ParamValue::Int(v))
            }
            ParamKind::Float { .. } => {
                let v: f64 = text.trim().parse().map_err(|_| {
                    Error::usage(format!("{flag}: expected a number, found `{text}`"))
                })?;
                self.check_float(v)?;
                Ok(ParamValue::Float(v))
            }
            ParamKind::Choice(words) => {
                if words.contains(&text) {
                    Ok(ParamValue::Str(text.to_string()))
                } else {
                    Err(Error::usage(format!(
                        "{flag}: expected one of {}, found `{text}`",
                        words.join(", ")
                    )))
                }
            }
            ParamKind::Path => Ok(ParamValue::Path(Some(text.to_string()))),
        }
    }

    fn check_int(&self, v: i64) -> Result<()> {
        if let ParamKind::Int { min, max } = self.kind
            && (v < min || v > max)
        {
            return Err(Error::usage(format!(
                "{}: expected an integer in {min}..={max}, found {v}",
                self.flag()
            )));
        }
        Ok(())
    }

    fn check_float(&self, v: f64) -> Result<()> {
        if let ParamKind::Float { min, max, open_min } = self.kind {
            let low_ok = if open_min { v > min } else { v >= min };
            if !v.is_finite() || !low_ok || v > max {
                let lo = if open_min { "(" } else { "[" };
                return Err(Error::usage(format!(
                    "{}: expected a number in {lo}{min}, {max}], found {v}",
                    self.flag()
                )));
            }
        }
        Ok(())
    }

    /// Validates a value given programmatically (e.g. from Python).
    pub fn check(&self, v: &ParamValue) -> Result<()> {
        match (self.kind, v) {
            (ParamKind::Int { .. }, ParamValue::Int(i)) => self.check_int(*i),
            (ParamKind::Float { .. }, ParamValue::Float(f)) => self.check_float(*f),
            (ParamKind::Float { .. }, ParamValue::Int(i)) => self.check_float(*i as f64),
            (ParamKind::Choice(_), ParamValue::Str(s)) => self.parse(s).map(|_| ()),
            (ParamKind::Path, ParamValue::Path(_)) => Ok(()),
            _ => Err(Error::usage(format!(
                "{}: value {v:?} has the wrong type",
                self.flag()
            ))),
        }
    }
}

/// Resolved parameter values by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params(pub BTreeMap<&'static str, ParamValue>);

impl Params {
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0.get(name)
    }

    /// An integer parameter; missing or mistyped is a programming error reported as internal.
    pub fn int(&self, name: &str) -> Result<i64> {
        match self.0.get(name) {
            Some(ParamValue::Int(v)) => Ok(*v),
            other => Err(Error::internal(format!(
                "parameter {name}: expected an integer, found {other:?}"
            ))),
        }
    }

    pub fn usize(&self, name: &str) -> Result<usize> {
        Ok(self.int(name)?.max(0) as usize)
    }

    pub fn float(&self, name: &str) -> Result<f64> {
        match self.0.get(name) {
            Some(ParamValue::Float(v)) => Ok(*v),
            Some(ParamValue::Int(v)) => Ok(*v as f64),
            other => Err(Error::internal(format!(
                "parameter {name}: expected a number, found {other:?}"
            ))),
        }
    }

    pub fn str(&self, name: &str) -> Result<&str> {
        match self.0.get(name) {
            Some(ParamValue::Str(v)) => Ok(v),
            other => Err(Error::internal(format!(
                "parameter {name}: expected a word, found {other:?}"
            ))),
        }
    }

    pub fn path(&self, name: &str) -> Result<Option<&str>> {
        match self.0.get(name) {
            Some(ParamValue::Path(p)) => Ok(p.as_deref()),
            other => Err(Error::internal(format!(
                "parameter {name}: expected a path, found {other:?}"
            ))),
        }
    }
}
