//! Parser for the IR text format printed by [`super::print_func`].
//!
//! The grammar is line oriented, one construct per line:
//!
//! ```text
//! func @name(v0: f32[B, 784], v1: i32[B]) -> f32[B, 10] {      // or -> (t, t)
//!     v2 = op v0, v1 {key=value, ...} : f32[B, 10]
//!     v3 = const 1.5 : f32[]
//!     return v2, v3
//! }
//! ```
//!
//! Blank lines and `//` comments (whole-line or trailing) are ignored, so
//! `.nnir` test files can carry a header. Value names are any `vN`; they are
//! mapped to dense values in definition order, so hand-written files need not
//! number densely. Param names are not part of the text: params are named
//! `p0, p1, ...`. Every instruction is type-checked with the verifier's own
//! rules as it is read, so a type error names its line rather than surfacing
//! later from `verify` without a location.

use super::verify::infer;
use super::{AttrReader, DType, Dim, Func, Inst, Op, Shape, Type, Value};
use std::collections::HashMap;

/// Parse one function in the printed IR text format.
///
/// Errors are `line N: message` (1-based line numbers of `text`).
pub fn parse_func(text: &str) -> Result<Func, String> {
    let mut p = FuncParser {
        func: Func {
            name: String::new(),
            param_names: vec![],
            params: vec![],
            insts: vec![],
            results: vec![],
            types: vec![],
        },
        names: HashMap::new(),
    };
    // Significant lines with their 1-based numbers, comments stripped.
    let mut lines = text.lines().enumerate().filter_map(|(i, l)| {
        let l = match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        };
        let l = l.trim();
        (!l.is_empty()).then_some((i + 1, l))
    });

    let (hline, header) = lines
        .next()
        .ok_or_else(|| "line 1: expected `func @name(...) -> type {`, found end of input".to_string())?;
    let ret_types = p.header(header).map_err(|e| at(hline, e))?;

    let mut last_line = hline;
    loop {
        let Some((n, line)) = lines.next() else {
            return Err(at(last_line, "expected `return` before end of input".into()));
        };
        last_line = n;
        if line == "return" || line.starts_with("return ") {
            p.ret(&line["return".len()..], &ret_types).map_err(|e| at(n, e))?;
            break;
        }
        if line == "}" {
            return Err(at(n, "expected `return` before `}`".into()));
        }
        p.inst(line).map_err(|e| at(n, e))?;
    }
    match lines.next() {
        Some((_, "}")) => {}
        Some((n, l)) => return Err(at(n, format!("expected `}}` after `return`, found `{l}`"))),
        None => return Err(at(last_line, "expected `}` after `return`".into())),
    }
    if let Some((n, l)) = lines.next() {
        return Err(at(n, format!("unexpected text after the function: `{l}`")));
    }
    Ok(p.func)
}

fn at(line: usize, msg: String) -> String {
    format!("line {line}: {msg}")
}

struct FuncParser {
    func: Func,
    /// Printed value number -> value in the function being built.
    names: HashMap<u32, Value>,
}

impl FuncParser {
    /// Define a fresh value named `vN` with type `ty`.
    fn define(&mut self, name: u32, ty: Type) -> Result<Value, String> {
        if self.names.contains_key(&name) {
            return Err(format!("v{name} is defined twice"));
        }
        let v = Value(self.func.types.len() as u32);
        self.func.types.push(ty);
        self.names.insert(name, v);
        Ok(v)
    }

    fn lookup(&self, name: u32) -> Result<Value, String> {
        self.names
            .get(&name)
            .copied()
            .ok_or_else(|| format!("v{name} is used before its definition"))
    }

    /// `func @name(v0: t, ...) -> t {` or `-> (t, ...) {`; returns the
    /// declared result types, checked against `return` later.
    fn header(&mut self, line: &str) -> Result<Vec<Type>, String> {
        let mut c = Cursor::new(line);
        c.expect("func")?;
        c.expect("@")?;
        // Names may contain `.` (`@f.vjp`), so take everything up to `(`.
        let name = c.take_while(|ch| ch != '(' && !ch.is_whitespace());
        if name.is_empty() {
            return Err("expected a function name after `@`".into());
        }
        self.func.name = name.to_string();
        c.expect("(")?;
        if !c.eat(")") {
            loop {
                let v = c.value_name()?;
                c.expect(":")?;
                let ty = c.ty()?;
                let value = self.define(v, ty)?;
                self.func.param_names.push(format!("p{}", self.func.params.len()));
                self.func.params.push(value);
                if c.eat(")") {
                    break;
                }
                c.expect(",")?;
            }
        }
        c.expect("->")?;
        let mut rets = Vec::new();
        if c.eat("(") {
            if !c.eat(")") {
                loop {
                    rets.push(c.ty()?);
                    if c.eat(")") {
                        break;
                    }
                    c.expect(",")?;
                }
            }
        } else {
            rets.push(c.ty()?);
        }
        c.expect("{")?;
        c.end()?;
        Ok(rets)
    }

    /// `vN = op args {attrs} : type`
    fn inst(&mut self, line: &str) -> Result<(), String> {
        let mut c = Cursor::new(line);
        let res = c.value_name()?;
        c.expect("=")?;
        let opname = c.ident()?;
        let mut args = Vec::new();
        let op = if opname == "const" {
            Op::Const(c.float()?)
        } else {
            // Operands: a comma-separated list of values, possibly empty.
            if c.peek_is('v') {
                loop {
                    args.push(self.lookup(c.value_name()?)?);
                    if !c.eat(",") {
                        break;
                    }
                }
            }
            let attrs = if c.eat("{") { c.attrs()? } else { Attrs::default() };
            build_op(opname, attrs)?
        };
        c.expect(":")?;
        let declared = c.ty()?;
        c.end()?;
        let arg_tys: Vec<&Type> = args.iter().map(|a| &self.func.types[a.index()]).collect();
        let ty = infer(&op, &arg_tys).map_err(|e| format!("{opname}: {e}"))?;
        if ty != declared {
            return Err(format!("{opname}: declared type {declared}, but the op gives {ty}"));
        }
        let result = self.define(res, ty)?;
        self.func.insts.push(Inst { result, op, args });
        Ok(())
    }

    /// The operands of `return` (text after the keyword).
    fn ret(&mut self, rest: &str, declared: &[Type]) -> Result<(), String> {
        let mut c = Cursor::new(rest);
        let mut results = Vec::new();
        if !c.at_end() {
            loop {
                results.push(self.lookup(c.value_name()?)?);
                if !c.eat(",") {
                    break;
                }
            }
        }
        c.end()?;
        if results.len() != declared.len() {
            return Err(format!(
                "return has {} values, the header declares {}",
                results.len(),
                declared.len()
            ));
        }
        for (i, (r, d)) in results.iter().zip(declared).enumerate() {
            let actual = &self.func.types[r.index()];
            if actual != d {
                return Err(format!("return value {i} has type {actual}, the header declares {d}"));
            }
        }
        self.func.results = results;
        Ok(())
    }
}

/// An attribute value: `[..]` list, integer, `true`/`false` or a dtype name.
#[derive(Debug)]
enum Attr {
    List(Vec<Dim>),
    Int(u64),
    Word(String),
}

/// Attributes in the order written; consumed by [`build_op`], which rejects
/// missing, unknown and duplicate keys.
#[derive(Default)]
struct Attrs(Vec<(String, Attr)>);

impl Attrs {
    fn take(&mut self, key: &str) -> Result<Attr, String> {
        let i = self
            .0
            .iter()
            .position(|(k, _)| k == key)
            .ok_or_else(|| format!("missing attribute `{key}`"))?;
        Ok(self.0.remove(i).1)
    }
    fn shape(&mut self, key: &str) -> Result<Shape, String> {
        match self.take(key)? {
            Attr::List(dims) => Ok(dims),
            other => Err(format!("attribute `{key}` must be a list, got {other:?}")),
        }
    }
    fn indices(&mut self, key: &str) -> Result<Vec<usize>, String> {
        self.shape(key)?
            .into_iter()
            .map(|d| d.known().ok_or_else(|| format!("attribute `{key}` must list integers, got `{d}`")))
            .collect()
    }
    fn int(&mut self, key: &str) -> Result<u64, String> {
        match self.take(key)? {
            Attr::Int(n) => Ok(n),
            other => Err(format!("attribute `{key}` must be an integer, got {other:?}")),
        }
    }
    fn word(&mut self, key: &str) -> Result<String, String> {
        match self.take(key)? {
            Attr::Word(w) => Ok(w),
            other => Err(format!("attribute `{key}` must be a word, got {other:?}")),
        }
    }
    fn bool(&mut self, key: &str) -> Result<bool, String> {
        match self.word(key)?.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            w => Err(format!("attribute `{key}` must be true or false, got `{w}`")),
        }
    }
    /// Called after the op took its attributes: anything left is an error.
    fn done(self, op: &str) -> Result<(), String> {
        match self.0.first() {
            Some((k, _)) => Err(format!("{op} has no attribute `{k}` (or it is repeated)")),
            None => Ok(()),
        }
    }
}

fn dtype(word: &str) -> Result<DType, String> {
    match word {
        "f32" => Ok(DType::F32),
        "i32" => Ok(DType::I32),
        _ => Err(format!("unknown dtype `{word}`")),
    }
}

impl AttrReader for Attrs {
    fn shape(&mut self, key: &str) -> Result<Shape, String> {
        Attrs::shape(self, key)
    }
    fn axes(&mut self, key: &str) -> Result<Vec<usize>, String> {
        self.indices(key)
    }
    fn bool(&mut self, key: &str) -> Result<bool, String> {
        Attrs::bool(self, key)
    }
    fn int(&mut self, key: &str) -> Result<u64, String> {
        Attrs::int(self, key)
    }
    fn dtype(&mut self, key: &str) -> Result<DType, String> {
        dtype(&self.word(key)?)
    }
}

/// The op named `name` with its attributes ([`Op::from_name`]), rejecting
/// attributes the op does not take.
fn build_op(name: &str, mut a: Attrs) -> Result<Op, String> {
    let op = Op::from_name(name, &mut a)?;
    a.done(name)?;
    Ok(op)
}

/// A cursor over one line; every token may be preceded by spaces.
struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn new(s: &'a str) -> Self {
        Cursor { rest: s }
    }
    fn skip_ws(&mut self) {
        self.rest = self.rest.trim_start();
    }
    fn at_end(&mut self) -> bool {
        self.skip_ws();
        self.rest.is_empty()
    }
    /// What is left, for error messages.
    fn found(&mut self) -> String {
        self.skip_ws();
        match self.rest {
            "" => "end of line".into(),
            r => format!("`{r}`"),
        }
    }
    fn peek_is(&mut self, ch: char) -> bool {
        self.skip_ws();
        self.rest.starts_with(ch)
    }
    fn eat(&mut self, tok: &str) -> bool {
        self.skip_ws();
        match self.rest.strip_prefix(tok) {
            Some(r) => {
                self.rest = r;
                true
            }
            None => false,
        }
    }
    fn expect(&mut self, tok: &str) -> Result<(), String> {
        if self.eat(tok) {
            Ok(())
        } else {
            Err(format!("expected `{tok}`, found {}", self.found()))
        }
    }
    fn end(&mut self) -> Result<(), String> {
        if self.at_end() {
            Ok(())
        } else {
            Err(format!("unexpected {}", self.found()))
        }
    }
    fn take_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        self.skip_ws();
        let end = self.rest.find(|c: char| !f(c)).unwrap_or(self.rest.len());
        let (tok, rest) = self.rest.split_at(end);
        self.rest = rest;
        tok
    }
    fn ident(&mut self) -> Result<&'a str, String> {
        self.skip_ws();
        if !self.rest.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            return Err(format!("expected a name, found {}", self.found()));
        }
        Ok(self.take_while(|c| c.is_ascii_alphanumeric() || c == '_'))
    }
    fn uint(&mut self) -> Result<u64, String> {
        let digits = self.take_while(|c| c.is_ascii_digit());
        if digits.is_empty() {
            return Err(format!("expected an integer, found {}", self.found()));
        }
        digits.parse().map_err(|e| format!("bad integer `{digits}`: {e}"))
    }
    /// `vN`
    fn value_name(&mut self) -> Result<u32, String> {
        self.skip_ws();
        let Some(r) = self.rest.strip_prefix('v').filter(|r| r.starts_with(|c: char| c.is_ascii_digit())) else {
            return Err(format!("expected a value `vN`, found {}", self.found()));
        };
        self.rest = r;
        let n = self.uint()?;
        u32::try_from(n).map_err(|_| format!("value number v{n} is too large"))
    }
    /// A constant as printed by `{:?}` on f64: `1.5`, `-0.0`, `1e-7`, `NaN`,
    /// `inf`, `-inf`. Rust's `f64` parser reads all of these back exactly.
    fn float(&mut self) -> Result<f64, String> {
        let tok = self.take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
        tok.parse().map_err(|_| format!("expected a number after `const`, found `{tok}`"))
    }
    fn dim(&mut self) -> Result<Dim, String> {
        self.skip_ws();
        if self.rest.starts_with(|c: char| c.is_ascii_digit()) {
            Ok(Dim::Known(self.uint()? as usize))
        } else {
            Ok(Dim::Sym(self.ident()?.to_string()))
        }
    }
    /// `[d, d, ...]` of integers or symbols.
    fn dims(&mut self) -> Result<Vec<Dim>, String> {
        self.expect("[")?;
        let mut dims = Vec::new();
        if self.eat("]") {
            return Ok(dims);
        }
        loop {
            dims.push(self.dim()?);
            if self.eat("]") {
                return Ok(dims);
            }
            self.expect(",")?;
        }
    }
    /// `f32[B, 784]`
    fn ty(&mut self) -> Result<Type, String> {
        let dtype = dtype(self.ident()?)?;
        Ok(Type {
            dtype,
            shape: self.dims()?,
        })
    }
    /// The inside of `{k=v, ...}` after the opening brace.
    fn attrs(&mut self) -> Result<Attrs, String> {
        let mut out = Vec::new();
        loop {
            let key = self.ident()?.to_string();
            self.expect("=")?;
            let val = if self.peek_is('[') {
                Attr::List(self.dims()?)
            } else if self.rest.starts_with(|c: char| c.is_ascii_digit()) {
                Attr::Int(self.uint()?)
            } else {
                Attr::Word(self.ident()?.to_string())
            };
            out.push((key, val));
            if self.eat("}") {
                return Ok(Attrs(out));
            }
            self.expect(",")?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{print_func, verify, BinaryOp, Builder, CmpOp, UnaryOp};

    fn f32t(dims: &[Dim]) -> Type {
        Type::f32(dims.to_vec())
    }
    fn b() -> Dim {
        Dim::Sym("B".into())
    }
    fn k(n: usize) -> Dim {
        Dim::Known(n)
    }

    /// print -> parse -> print is the identity, the parse verifies, and it
    /// rebuilds the same function (up to param names, which are not printed).
    fn round_trip(f: &Func) {
        verify(f).expect("test input must verify");
        let text = print_func(f);
        let g = parse_func(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        verify(&g).unwrap_or_else(|e| panic!("parsed function fails verify: {e}\n{text}"));
        assert_eq!(print_func(&g), text);
        assert_eq!(g.name, f.name);
        assert_eq!(g.types, f.types);
        assert_eq!(g.params, f.params);
        assert_eq!(g.results, f.results);
        assert_eq!(g.insts.len(), f.insts.len());
        for (a, b) in g.insts.iter().zip(&f.insts) {
            assert_eq!((a.result, &a.args), (b.result, &b.args));
            // Constants compare by bits so NaN and -0.0 count.
            if let (Op::Const(x), Op::Const(y)) = (&a.op, &b.op) {
                assert_eq!(x.to_bits(), y.to_bits());
            } else {
                assert_eq!(a.op, b.op);
            }
        }
        let names: Vec<String> = (0..f.params.len()).map(|i| format!("p{i}")).collect();
        assert_eq!(g.param_names, names);
    }

    #[test]
    fn round_trips_a_dense_layer() {
        let mut bld = Builder::new("dense");
        let x = bld.param("x", f32t(&[b(), k(784)]));
        let w = bld.param("w", f32t(&[k(784), k(128)]));
        let bias = bld.param("b", f32t(&[k(128)]));
        let y = bld.matmul(x, w);
        let bb = bld.broadcast(bias, &[b(), k(128)]);
        let z = bld.add(y, bb);
        round_trip(&bld.finish(&[z]));
    }

    /// Every op, every attribute form, awkward constants, a dotted name and
    /// several results.
    #[test]
    fn round_trips_every_op() {
        let mut bld = Builder::new("all.vjp");
        let x = bld.param("x", f32t(&[b(), k(4)]));
        let w = bld.param("w", f32t(&[k(4), k(3)]));
        let labels = bld.param(
            "labels",
            Type {
                dtype: DType::I32,
                shape: vec![b()],
            },
        );
        let s = bld.param("s", Type::scalar());
        let mut last = x;
        for u in UnaryOp::ALL {
            last = bld.unary(u, last);
        }
        for op in BinaryOp::ALL {
            last = bld.binary(op, last, x);
        }
        let mut cmps = Vec::new();
        for c in CmpOp::ALL {
            cmps.push(bld.compare(c, last, x));
        }
        let sel = bld.select(cmps[0], last, x);
        let mm = bld.matmul(sel, w);
        let r = bld.push(
            Op::ReduceSum {
                axes: vec![0, 1],
                keep: true,
            },
            &[mm],
        );
        let rm = bld.push(
            Op::ReduceMax {
                axes: vec![1],
                keep: false,
            },
            &[mm],
        );
        let rs = bld.push(Op::Reshape { shape: vec![k(3), b()] }, &[mm]);
        let t = bld.push(Op::Transpose { perm: vec![1, 0] }, &[rs]);
        let oh = bld.push(Op::OneHot { depth: 10 }, &[labels]);
        let ci = bld.push(Op::Cast { to: DType::I32 }, &[oh]);
        let cf = bld.push(Op::Cast { to: DType::F32 }, &[labels]);
        let ru = bld.push(
            Op::RandomUniform {
                shape: vec![b(), k(2)],
                seed: 42,
            },
            &[s],
        );
        let rn = bld.push(
            Op::RandomNormal {
                shape: vec![],
                seed: u64::MAX,
            },
            &[s],
        );
        let mut consts = Vec::new();
        for c in [1.5, -0.0, 1e-7, 1e20, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.1, 3.0] {
            consts.push(bld.constant(c));
        }
        let sc = bld.add(s, consts[0]);
        let f = bld.finish(&[r, rm, t, ci, cf, ru, rn, sc, consts[4]]);
        round_trip(&f);
    }

    #[test]
    fn round_trips_no_params_and_no_results() {
        let mut bld = Builder::new("empty");
        bld.constant(2.0);
        round_trip(&bld.finish(&[]));
        let mut bld = Builder::new("one");
        let c = bld.constant(2.0);
        round_trip(&bld.finish(&[c]));
    }

    /// Hand-written files may number values sparsely, comment, and indent
    /// freely; values come out dense in definition order.
    #[test]
    fn accepts_sparse_names_and_comments() {
        let text = "// pass: none\n\nfunc @f(v7: f32[2]) -> f32[2] { // header\n  v10 = neg v7 : f32[2]\n// mid\n v3 = exp v10 : f32[2]\n return v3\n}\n";
        let f = parse_func(text).unwrap();
        verify(&f).unwrap();
        assert_eq!(
            print_func(&f),
            "func @f(v0: f32[2]) -> f32[2] {\n    v1 = neg v0 : f32[2]\n    v2 = exp v1 : f32[2]\n    return v2\n}\n"
        );
    }

    /// Each malformed text yields an error naming the offending line.
    #[test]
    fn errors_name_the_line() {
        let head = "func @f(v0: f32[B, 3]) -> f32[B, 3] {\n";
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "line 1: expected `func"),
            ("fn @f() -> f32[] {\n".into(), "line 1: expected `func`"),
            ("func @f(v0: f64[2]) -> f32[] {\n".into(), "line 1: unknown dtype `f64`"),
            ("func @f(v0: f32[2] -> f32[] {\n".into(), "line 1: expected `,`"),
            (
                format!("{head}    v1 = frob v0 : f32[B, 3]\n    return v1\n}}\n"),
                "line 2: unknown op `frob`",
            ),
            (
                format!("{head}    v1 = neg v9 : f32[B, 3]\n    return v1\n}}\n"),
                "line 2: v9 is used before",
            ),
            (
                format!("{head}\n// c\n    v1 = neg v0 : f32[B, 4]\n    return v1\n}}\n"),
                "line 4: neg: declared type f32[B, 4]",
            ),
            (format!("{head}    v1 = add v0 : f32[B, 3]\n    return v1\n}}\n"), "line 2: add: "),
            (
                format!("{head}    v0 = neg v0 : f32[B, 3]\n    return v0\n}}\n"),
                "line 2: v0 is defined twice",
            ),
            (
                format!("{head}    v1 = broadcast v0 {{shape=[B, 3], seed=1}} : f32[B, 3]\n    return v1\n}}\n"),
                "line 2: broadcast has no attribute `seed`",
            ),
            (
                format!("{head}    v1 = reduce_sum v0 {{axes=[1]}} : f32[B]\n    return v1\n}}\n"),
                "line 2: missing attribute `keep`",
            ),
            (
                format!("{head}    v1 = const abc : f32[]\n    return v1\n}}\n"),
                "line 2: expected a number",
            ),
            (
                format!("{head}    v1 = neg v0 : f32[B, 3] extra\n    return v1\n}}\n"),
                "line 2: unexpected `extra`",
            ),
            (format!("{head}    v1 = neg v0 : f32[B, 3]\n"), "line 2: expected `return`"),
            (format!("{head}    return v0\n"), "line 2: expected `}` after `return`"),
            (
                format!("{head}    v1 = neg v0 : f32[B, 3]\n}}\n"),
                "line 3: expected `return` before `}`",
            ),
            (format!("{head}    return v0, v0\n}}\n"), "line 2: return has 2 values"),
            (
                format!("{head}    v1 = const 1.0 : f32[]\n    return v1\n}}\n"),
                "line 3: return value 0 has type f32[]",
            ),
            (
                format!("{head}    return v0\n}}\nfunc\n"),
                "line 4: unexpected text after the function",
            ),
            (
                format!("{head}    return v0\n    v1 = neg v0 : f32[B, 3]\n}}\n"),
                "line 3: expected `}` after `return`",
            ),
        ];
        for (text, want) in cases {
            let err = parse_func(&text).expect_err(&text);
            assert!(err.starts_with(want), "for\n{text}\nwanted an error starting `{want}`, got `{err}`");
        }
    }
}
