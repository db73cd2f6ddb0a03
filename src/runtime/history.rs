//! The metrics history of a run: CSV for spreadsheets and plotting tools,
//! JSON lines for programs (and for `--resume`, which reads it back).
//!
//! The JSON is written and read here by hand: the records are flat objects
//! of numbers, and a JSON crate would add `PartialEq<Value>` impls for
//! `f64` that break type inference in unrelated code.

use super::train::{EpochReport, Scores};

/// Column names: `epoch, lr, seconds`, then `train_*` and `val_*` for every
/// value that any epoch reported.
fn columns(h: &[EpochReport]) -> Vec<String> {
    let mut cols: Vec<String> = vec![];
    let mut add = |name: String| {
        if !cols.contains(&name) {
            cols.push(name);
        }
    };
    for r in h {
        for (k, _) in r.train.all() {
            add(format!("train_{k}"));
        }
    }
    for r in h {
        for (k, _) in r.validation.iter().flat_map(Scores::all) {
            add(format!("val_{k}"));
        }
    }
    cols
}

/// The value of a `train_*` / `val_*` column in one epoch.
pub fn column(r: &EpochReport, col: &str) -> Option<f64> {
    if let Some(k) = col.strip_prefix("train_") {
        r.train.get(k)
    } else {
        r.validation.as_ref()?.get(col.strip_prefix("val_")?)
    }
}

pub fn to_csv(h: &[EpochReport]) -> String {
    let cols = columns(h);
    let mut out = format!("epoch,lr,seconds,{}\n", cols.join(","));
    for r in h {
        let vals: Vec<String> = cols
            .iter()
            .map(|c| column(r, c).map(|v| v.to_string()).unwrap_or_default())
            .collect();
        out.push_str(&format!("{},{},{:.3},{}\n", r.epoch, r.lr, r.seconds, vals.join(",")));
    }
    out
}

/// A number as JSON: Rust prints the shortest text that parses back to
/// the same f64, so values round-trip exactly; non-finite values are null.
fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        "null".into()
    }
}

/// `{"k":v,...}` of named numbers, in the given order.
pub fn object(vals: &[(String, f64)]) -> String {
    let fields: Vec<String> = vals.iter().map(|(k, v)| format!("\"{k}\":{}", num(*v))).collect();
    format!("{{{}}}", fields.join(","))
}

/// One JSON object per line per epoch.
pub fn to_jsonl(h: &[EpochReport]) -> String {
    let mut out = String::new();
    for r in h {
        out.push_str(&format!(
            "{{\"epoch\":{},\"epochs\":{},\"lr\":{},\"seconds\":{},\"train\":{}",
            r.epoch,
            r.epochs,
            num(r.lr),
            num(r.seconds),
            object(&r.train.all())
        ));
        if let Some(v) = &r.validation {
            out.push_str(&format!(",\"validation\":{}", object(&v.all())));
        }
        out.push_str("}\n");
    }
    out
}

/// A parsed value of the small JSON subset [`to_jsonl`] writes.
#[derive(Debug)]
enum Json {
    Num(f64),
    Null,
    Obj(Vec<(String, Json)>),
}

/// Parses objects, string keys, numbers and null; anything else is an error.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected `{}` at column {}", c as char, self.i + 1))
        }
    }
    fn key(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let start = self.i;
        while self.s.get(self.i).is_some_and(|c| *c != b'"') {
            self.i += 1;
        }
        let k = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.eat(b'"')?;
        Ok(k)
    }
    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut fields = vec![];
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(fields));
                }
                loop {
                    let k = self.key()?;
                    self.eat(b':')?;
                    fields.push((k, self.value()?));
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(fields));
                        }
                        _ => return Err(format!("expected `,` or `}}` at column {}", self.i + 1)),
                    }
                }
            }
            Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(Json::Null)
            }
            _ => {
                let start = self.i;
                while self.s.get(self.i).is_some_and(|c| c.is_ascii_digit() || b"+-.eE".contains(c)) {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                text.parse()
                    .map(Json::Num)
                    .map_err(|_| format!("expected a number at column {}", start + 1))
            }
        }
    }
}

impl Json {
    fn get(&self, k: &str) -> Option<&Json> {
        match self {
            Json::Obj(f) => f.iter().find(|(n, _)| n == k).map(|(_, v)| v),
            _ => None,
        }
    }
    fn num(&self) -> Option<f64> {
        match self {
            Json::Num(v) => Some(*v),
            Json::Null => Some(f64::NAN),
            Json::Obj(_) => None,
        }
    }
}

fn scores_from(v: &Json) -> Option<Scores> {
    let Json::Obj(fields) = v else { return None };
    let mut s = Scores {
        loss: v.get("loss")?.num()?,
        ..Scores::default()
    };
    for (k, v) in fields {
        match k.as_str() {
            "loss" => {}
            "accuracy" => s.accuracy = v.num(),
            _ => s.metrics.push((k.clone(), v.num()?)),
        }
    }
    Some(s)
}

/// Read back what [`to_jsonl`] wrote, exactly.
pub fn from_jsonl(text: &str) -> Result<Vec<EpochReport>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            let bad = || format!("line {}: not a metrics record", i + 1);
            let v = Parser { s: line.as_bytes(), i: 0 }
                .value()
                .map_err(|e| format!("line {}: {e}", i + 1))?;
            let num = |k: &str| v.get(k).and_then(Json::num).ok_or_else(bad);
            Ok(EpochReport {
                epoch: num("epoch")? as usize,
                epochs: num("epochs")? as usize,
                lr: num("lr")?,
                seconds: num("seconds")?,
                train: v.get("train").and_then(scores_from).ok_or_else(bad)?,
                validation: match v.get("validation") {
                    Some(x) => Some(scores_from(x).ok_or_else(bad)?),
                    None => None,
                },
            })
        })
        .collect()
}
