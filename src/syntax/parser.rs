//! Parsing: the pest grammar in `grammar/nn.pest` produces pairs, which are
//! turned into the AST here. Parsing never fails: a file is split into
//! top-level declarations at lines that start with a declaration keyword, and
//! each is parsed on its own, so one syntax error loses one declaration and
//! every error in the file is reported in one run.

use super::ast::*;
use crate::base::{FileId, Span};
use crate::diag::Diagnostic;
use pest::iterators::Pair;
use pest::Parser as _;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/nn.pest"]
struct NnParser;

const DECL_KEYWORDS: &[&str] = &["fn", "layer", "model", "optimizer", "train", "use"];

/// Byte offsets where a top-level declaration starts: a line whose first
/// word, at column 0, is a declaration keyword.
fn chunk_starts(text: &str) -> Vec<usize> {
    let mut starts = vec![0];
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let word: String = line.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
        let after = line[word.len()..].chars().next();
        if offset > 0 && DECL_KEYWORDS.contains(&word.as_str()) && matches!(after, Some(' ' | '\t')) {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts
}

/// Brackets nested deeper than this are rejected before parsing: the
/// grammar is recursive, and pathological input must not overflow the stack.
const MAX_NESTING: usize = 200;

fn too_deep(file: FileId, text: &str) -> Option<Diagnostic> {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(Diagnostic::error(
                        "E0001",
                        format!("brackets are nested more than {MAX_NESTING} deep"),
                        Span::new(file, i, i + 1),
                        "too deep here",
                    ));
                }
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Parse a whole file into a module plus syntax diagnostics.
pub fn parse(file: FileId, text: &str) -> (Module, Vec<Diagnostic>) {
    let mut module = Module::default();
    let mut diags = Vec::new();
    if let Some(d) = too_deep(file, text) {
        return (module, vec![d]);
    }
    let starts = chunk_starts(text);
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(text.len());
        let chunk = &text[start..end];
        match NnParser::parse(Rule::file, chunk) {
            Ok(mut pairs) => {
                let b = Build { file, offset: start, text };
                let file_pair = pairs.next().expect("file rule");
                for p in file_pair.into_inner() {
                    if p.as_rule() != Rule::EOI {
                        module.items.push(b.item(p));
                    }
                }
            }
            Err(e) => diags.push(syntax_error(file, text, start, end, &e)),
        }
    }
    (module, diags)
}

fn describe(rule: &Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of file",
        Rule::use_decl | Rule::fn_decl | Rule::layer_decl | Rule::model_decl | Rule::optimizer_decl | Rule::train_decl => {
            "a declaration (`fn`, `layer`, `model`, `optimizer`, `train`, `use`)"
        }
        Rule::ident | Rule::path => "a name",
        Rule::params | Rule::param => "a parameter",
        Rule::ret_type => "`->` and a return type",
        Rule::body => "`=` or `{`",
        Rule::block => "`{`",
        Rule::param_decl | Rule::buffer_decl => "`param`, `buffer`, `fn` or `let`",
        Rule::train_field => "a setting (`name = value`)",
        Rule::step_decl => "a step (`step NAME with OPTIMIZER on MODEL { ... }`)",
        Rule::if_expr => "`if`",
        Rule::kw_if => "`if`",
        Rule::kw_else => "`else`",
        Rule::kw_step => "`step`",
        Rule::kw_with => "`with`",
        Rule::kw_on => "`on`",
        Rule::let_stmt | Rule::return_stmt | Rule::state_stmt | Rule::assign_stmt | Rule::expr_stmt => "a statement",
        Rule::assign_op => "`=`",
        Rule::type_expr | Rule::tensor_type | Rule::fn_type => "a type",
        Rule::dtype => "a dtype",
        Rule::dims | Rule::dim | Rule::dim_sum | Rule::dim_prod | Rule::dim_atom | Rule::ellipsis => "a dimension",
        Rule::dim_add_op | Rule::dim_mul_op => "an operator",
        Rule::expr | Rule::pipe | Rule::comparison | Rule::additive | Rule::multiplicative | Rule::unary | Rule::power | Rule::postfix => {
            "an expression"
        }
        Rule::pipe_op => "`|>`",
        Rule::cmp_op | Rule::add_op | Rule::mul_op | Rule::neg => "an operator",
        Rule::call_args => "`(`",
        // `x[...]` and `x.name` are postfix operators: listing them apart
        // after every expression would only lengthen each message.
        Rule::index_args | Rule::field => "an operator",
        Rule::index | Rule::slice => "an index",
        Rule::slice_colon => "`:`",
        Rule::arg => "an argument",
        Rule::paren => "`(`",
        Rule::list => "`[`",
        Rule::scan | Rule::scan_kw => "`scan`",
        Rule::scan_seq => "`NAME in SEQUENCE`",
        Rule::scan_carry => "`NAME = INITIAL VALUE`",
        Rule::in_kw => "`in`",
        Rule::along_kw => "`along`",
        Rule::from_kw => "`from`",
        Rule::int | Rule::float => "a number",
        Rule::bool => "`true` or `false`",
        Rule::string => "a string",
        _ => "something else",
    }
}

/// The token at `pos`, for the error's label: a word, a number, or one char.
fn token_at(text: &str, pos: usize) -> (usize, usize) {
    let rest = &text[pos..];
    let word = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
        .map(char::len_utf8)
        .sum::<usize>();
    let len = if word > 0 {
        word
    } else {
        rest.chars().next().map_or(0, char::len_utf8)
    };
    (pos, pos + len)
}

/// End of the last character in `text[from..to]` that is not whitespace or
/// inside a comment.
fn significant_end(text: &str, from: usize, to: usize) -> usize {
    let bytes = text.as_bytes();
    let (mut i, mut last) = (from, from);
    while i < to {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < to && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < to && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < to && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += 1;
                }
                i += 1;
                last = i.min(to);
            }
            c if c.is_ascii_whitespace() => i += 1,
            _ => {
                i += 1;
                last = i;
            }
        }
    }
    last
}

/// The token that ends at `end`.
fn token_before(text: &str, end: usize) -> (usize, usize) {
    let start = text[..end]
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_' || *c == '.')
        .last()
        .map_or_else(|| text[..end].char_indices().next_back().map_or(end, |(i, _)| i), |(i, _)| i);
    (start, end)
}

fn syntax_error(file: FileId, text: &str, offset: usize, chunk_end: usize, e: &pest::error::Error<Rule>) -> Diagnostic {
    let pos = offset
        + match e.location {
            pest::error::InputLocation::Pos(p) => p,
            pest::error::InputLocation::Span((s, _)) => s,
        };
    // When the declaration ends too early (the next one, or the file,
    // begins), point at its last token: that is where something is missing.
    let sig_end = significant_end(text, offset, chunk_end);
    let at_end = pos >= sig_end;
    let (start, end) = if at_end && sig_end > offset {
        token_before(text, sig_end)
    } else {
        token_at(text, pos)
    };
    let found = if at_end {
        if chunk_end >= text.len() {
            "end of file".to_string()
        } else {
            let (a, b) = token_at(text, chunk_end);
            format!("`{}`", &text[a..b])
        }
    } else {
        format!("`{}`", &text[start..end])
    };
    let mut expected: Vec<&str> = match &e.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives.iter().map(describe).collect(),
        pest::error::ErrorVariant::CustomError { .. } => vec![],
    };
    expected.sort();
    expected.dedup();
    // "something else" only helps when it is all we know.
    if expected.len() > 1 {
        expected.retain(|e| *e != "something else");
    }
    let message = match expected.as_slice() {
        [] => format!("unexpected {found}"),
        [one] => format!("expected {one}, found {found}"),
        many => format!(
            "expected {} or {}, found {found}",
            many[..many.len() - 1].join(", "),
            many[many.len() - 1]
        ),
    };
    let label = if at_end {
        format!("expected {} after this", expected.last().copied().unwrap_or("more"))
    } else {
        format!("unexpected {found}")
    };
    let span_end = if end == start { (start + 1).min(text.len()) } else { end };
    Diagnostic::error("E0001", message, Span::new(file, start.min(text.len()), span_end), label)
}

/// Converts pest pairs of one chunk to AST nodes with file-absolute spans.
struct Build<'t> {
    file: FileId,
    offset: usize,
    text: &'t str,
}

impl Build<'_> {
    fn span(&self, p: &Pair<Rule>) -> Span {
        let s = p.as_span();
        Span::new(self.file, self.offset + s.start(), self.offset + s.end())
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    /// `///` lines directly above the declaration starting at `start`.
    fn doc(&self, start: usize) -> Option<String> {
        let before = &self.text[..start];
        let mut lines: Vec<&str> = Vec::new();
        for line in before.lines().rev() {
            let t = line.trim();
            if let Some(rest) = t.strip_prefix("///") {
                lines.push(rest.strip_prefix(' ').unwrap_or(rest));
            } else {
                break;
            }
        }
        // `lines()` drops the final empty line only; a declaration starts a line.
        if lines.is_empty() {
            return None;
        }
        lines.reverse();
        Some(lines.join("\n"))
    }

    fn item(&self, p: Pair<Rule>) -> Item {
        let span = self.span(&p);
        let doc = self.doc(span.start as usize);
        match p.as_rule() {
            Rule::use_decl => {
                let t = p.into_inner().next().expect("use target");
                let target_span = self.span(&t);
                let target = match t.as_rule() {
                    Rule::string => unquote(t.as_str()),
                    _ => t.as_str().to_string(),
                };
                Item::Use(UseDecl { target, target_span, span })
            }
            Rule::fn_decl => Item::Fn(self.fn_decl(p, doc)),
            Rule::layer_decl => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().expect("layer name"));
                let mut params = vec![];
                let mut members = vec![];
                for q in it {
                    match q.as_rule() {
                        Rule::params => params = self.params(q),
                        Rule::param_decl => members.push(LayerMember::Param(self.tensor_decl(q))),
                        Rule::buffer_decl => members.push(LayerMember::Buffer(self.tensor_decl(q))),
                        Rule::fn_decl => {
                            let d = self.doc(self.span(&q).start as usize);
                            members.push(LayerMember::Fn(self.fn_decl(q, d)))
                        }
                        Rule::let_stmt => {
                            if let Stmt::Let { name, ty, value, span } = self.stmt(q) {
                                members.push(LayerMember::Let { name, ty, value, span })
                            }
                        }
                        r => unreachable!("layer member {r:?}"),
                    }
                }
                Item::Layer(LayerDecl {
                    name,
                    params,
                    members,
                    doc,
                    span,
                })
            }
            Rule::model_decl => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().expect("model name"));
                let mut inputs = vec![];
                let mut ret = None;
                let mut body = None;
                for q in it {
                    match q.as_rule() {
                        Rule::params => inputs = self.params(q),
                        Rule::ret_type => ret = Some(self.type_expr(q.into_inner().next().expect("type"))),
                        Rule::body => body = Some(self.body(q)),
                        r => unreachable!("model part {r:?}"),
                    }
                }
                Item::Model(ModelDecl {
                    name,
                    inputs,
                    ret,
                    body: body.expect("model body"),
                    doc,
                    span,
                })
            }
            Rule::optimizer_decl => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().expect("optimizer name"));
                let mut params = vec![];
                let mut body = None;
                for q in it {
                    match q.as_rule() {
                        Rule::params => params = self.params(q),
                        Rule::block => body = Some(self.block(q)),
                        r => unreachable!("optimizer part {r:?}"),
                    }
                }
                Item::Optimizer(OptimizerDecl {
                    name,
                    params,
                    body: body.expect("optimizer body"),
                    doc,
                    span,
                })
            }
            Rule::train_decl => {
                let mut it = p.into_inner();
                let model = self.ident(it.next().expect("train model"));
                let mut fields = vec![];
                let mut steps = vec![];
                for f in it {
                    let span = self.span(&f);
                    let rule = f.as_rule();
                    let mut fi = f.into_inner().filter(|q| !is_keyword_token(q.as_rule()));
                    let name = self.ident(fi.next().expect("field name"));
                    if rule == Rule::step_decl {
                        let optimizer = self.expr(fi.next().expect("step optimizer"));
                        let model = self.ident(fi.next().expect("step model"));
                        let body = self.block(fi.next().expect("step body"));
                        steps.push(StepDecl {
                            name,
                            optimizer,
                            model,
                            body,
                            span,
                        });
                    } else {
                        let value = self.expr(fi.next().expect("field value"));
                        fields.push(TrainField { name, value, span });
                    }
                }
                Item::Train(TrainDecl {
                    model,
                    fields,
                    steps,
                    span,
                })
            }
            r => unreachable!("item {r:?}"),
        }
    }

    fn fn_decl(&self, p: Pair<Rule>, doc: Option<String>) -> FnDecl {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.ident(it.next().expect("fn name"));
        let mut params = vec![];
        let mut ret = None;
        let mut body = None;
        for q in it {
            match q.as_rule() {
                Rule::params => params = self.params(q),
                Rule::ret_type => ret = Some(self.type_expr(q.into_inner().next().expect("type"))),
                Rule::body => body = Some(self.body(q)),
                r => unreachable!("fn part {r:?}"),
            }
        }
        FnDecl {
            name,
            params,
            ret,
            body: body.expect("fn body"),
            doc,
            span,
        }
    }

    fn params(&self, p: Pair<Rule>) -> Vec<Param> {
        p.into_inner()
            .map(|q| {
                let span = self.span(&q);
                let mut it = q.into_inner();
                let name = self.ident(it.next().expect("param name"));
                let mut ty = None;
                let mut default = None;
                for r in it {
                    match r.as_rule() {
                        Rule::type_expr => ty = Some(self.type_expr(r)),
                        Rule::expr => default = Some(self.expr(r)),
                        x => unreachable!("param part {x:?}"),
                    }
                }
                Param { name, ty, default, span }
            })
            .collect()
    }

    fn tensor_decl(&self, p: Pair<Rule>) -> TensorDecl {
        let span = self.span(&p);
        let mut it = p.into_inner();
        let name = self.ident(it.next().expect("name"));
        let ty = self.type_expr(it.next().expect("type"));
        let init = self.expr(it.next().expect("init"));
        TensorDecl { name, ty, init, span }
    }

    fn body(&self, p: Pair<Rule>) -> Body {
        let q = p.into_inner().next().expect("body");
        match q.as_rule() {
            Rule::expr => Body::Expr(self.expr(q)),
            Rule::block => Body::Block(self.block(q)),
            r => unreachable!("body {r:?}"),
        }
    }

    fn block(&self, p: Pair<Rule>) -> Block {
        let span = self.span(&p);
        Block {
            stmts: p.into_inner().map(|q| self.stmt(q)).collect(),
            span,
        }
    }

    fn stmt(&self, p: Pair<Rule>) -> Stmt {
        let span = self.span(&p);
        let rule = p.as_rule();
        let mut it = p.into_inner();
        match rule {
            Rule::let_stmt => {
                let name = self.ident(it.next().expect("let name"));
                let mut ty = None;
                let mut value = None;
                for q in it {
                    match q.as_rule() {
                        Rule::type_expr => ty = Some(self.type_expr(q)),
                        _ => value = Some(self.expr(q)),
                    }
                }
                Stmt::Let {
                    name,
                    ty,
                    value: value.expect("let value"),
                    span,
                }
            }
            Rule::return_stmt => Stmt::Return {
                value: self.expr(it.next().expect("return value")),
                span,
            },
            Rule::state_stmt => {
                let name = self.ident(it.next().expect("state name"));
                Stmt::State {
                    name,
                    value: self.expr(it.next().expect("state value")),
                    span,
                }
            }
            Rule::assign_stmt => {
                let target = self.ident(it.next().expect("target"));
                let op = match it.next().expect("op").as_str() {
                    "+=" => AssignOp::Add,
                    "-=" => AssignOp::Sub,
                    "*=" => AssignOp::Mul,
                    "/=" => AssignOp::Div,
                    _ => AssignOp::Set,
                };
                Stmt::Assign {
                    target,
                    op,
                    value: self.expr(it.next().expect("value")),
                    span,
                }
            }
            Rule::expr_stmt => Stmt::Expr(self.expr(it.next().expect("expr"))),
            r => unreachable!("stmt {r:?}"),
        }
    }

    fn type_expr(&self, p: Pair<Rule>) -> TypeExpr {
        let q = p.into_inner().next().expect("type");
        let span = self.span(&q);
        match q.as_rule() {
            Rule::tensor_type => {
                let mut dtype = None;
                let mut dims = vec![];
                for r in q.into_inner() {
                    match r.as_rule() {
                        Rule::dtype => dtype = Some(self.ident(r)),
                        Rule::dims => dims = r.into_inner().map(|d| self.dim(d)).collect(),
                        x => unreachable!("tensor type part {x:?}"),
                    }
                }
                TypeExpr::Tensor { dtype, dims, span }
            }
            Rule::fn_type => TypeExpr::Fn(span),
            _ => TypeExpr::Named(self.ident(q)),
        }
    }

    fn dim(&self, p: Pair<Rule>) -> DimExpr {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::dim => self.dim(p.into_inner().next().expect("dim")),
            Rule::ellipsis => DimExpr::Ellipsis(span),
            Rule::dim_sum | Rule::dim_prod => {
                let mut it = p.into_inner();
                let mut acc = self.dim(it.next().expect("operand"));
                while let Some(op) = it.next() {
                    let rhs = self.dim(it.next().expect("operand"));
                    let op = match op.as_str() {
                        "+" => DimOp::Add,
                        "-" => DimOp::Sub,
                        "*" => DimOp::Mul,
                        _ => DimOp::Div,
                    };
                    let s = acc.span().to(rhs.span());
                    acc = DimExpr::Bin(op, Box::new(acc), Box::new(rhs), s);
                }
                acc
            }
            Rule::dim_atom => {
                let q = p.into_inner().next().expect("dim atom");
                match q.as_rule() {
                    Rule::int => DimExpr::Int(q.as_str().parse().unwrap_or(i64::MAX), span),
                    Rule::ident => DimExpr::Name(self.ident(q)),
                    _ => self.dim(q),
                }
            }
            r => unreachable!("dim {r:?}"),
        }
    }

    fn expr(&self, p: Pair<Rule>) -> Expr {
        let span = self.span(&p);
        match p.as_rule() {
            Rule::expr => self.expr(p.into_inner().next().expect("expr")),
            // A parenthesised expression spans its parentheses, so a fix
            // that wraps it (`floor((h - k) / 2)`) keeps them balanced.
            Rule::paren => Expr {
                span,
                ..self.expr(p.into_inner().next().expect("expr"))
            },
            Rule::pipe => {
                let mut it = p.into_inner();
                let mut acc = self.expr(it.next().expect("operand"));
                while let Some(_op) = it.next() {
                    let rhs = self.expr(it.next().expect("stage"));
                    let s = acc.span.to(rhs.span);
                    acc = Expr {
                        kind: ExprKind::Pipe(Box::new(acc), Box::new(rhs)),
                        span: s,
                    };
                }
                acc
            }
            Rule::comparison | Rule::additive | Rule::multiplicative => {
                let mut it = p.into_inner();
                let mut acc = self.expr(it.next().expect("operand"));
                while let Some(op) = it.next() {
                    let rhs = self.expr(it.next().expect("operand"));
                    let op = match op.as_str() {
                        "+" => BinOp::Add,
                        "-" => BinOp::Sub,
                        "*" => BinOp::Mul,
                        "/" => BinOp::Div,
                        "%" => BinOp::Rem,
                        "@" => BinOp::MatMul,
                        "<" => BinOp::Lt,
                        "<=" => BinOp::Le,
                        ">" => BinOp::Gt,
                        ">=" => BinOp::Ge,
                        "==" => BinOp::Eq,
                        _ => BinOp::Ne,
                    };
                    let s = acc.span.to(rhs.span);
                    acc = Expr {
                        kind: ExprKind::Binary(op, Box::new(acc), Box::new(rhs)),
                        span: s,
                    };
                }
                acc
            }
            Rule::unary => {
                let parts: Vec<Pair<Rule>> = p.into_inner().collect();
                let (negs, operand) = parts.split_at(parts.len() - 1);
                let mut acc = self.expr(operand[0].clone());
                for n in negs.iter().rev() {
                    let s = self.span(n).to(acc.span);
                    // Fold `-3` into a literal so `-1` is a number, not a negation.
                    acc = match acc.kind {
                        ExprKind::Int(v) => Expr {
                            kind: ExprKind::Int(-v),
                            span: s,
                        },
                        ExprKind::Float(v) => Expr {
                            kind: ExprKind::Float(-v),
                            span: s,
                        },
                        _ => Expr {
                            kind: ExprKind::Neg(Box::new(acc)),
                            span: s,
                        },
                    };
                }
                acc
            }
            Rule::power => {
                let mut it = p.into_inner();
                let base = self.expr(it.next().expect("base"));
                match it.next() {
                    Some(e) => {
                        let exp = self.expr(e);
                        // Not the pair's span: that includes the whitespace
                        // and comments after it.
                        let span = base.span.to(exp.span);
                        Expr {
                            kind: ExprKind::Binary(BinOp::Pow, Box::new(base), Box::new(exp)),
                            span,
                        }
                    }
                    None => base,
                }
            }
            Rule::postfix => {
                let mut it = p.into_inner();
                let mut acc = self.expr(it.next().expect("atom"));
                for suffix in it {
                    let s = acc.span.to(self.span(&suffix));
                    let kind = match suffix.as_rule() {
                        Rule::call_args => ExprKind::Call {
                            callee: Box::new(acc),
                            args: suffix.into_inner().map(|a| self.arg(a)).collect(),
                        },
                        Rule::index_args => ExprKind::Index {
                            base: Box::new(acc),
                            items: suffix.into_inner().map(|i| self.index_item(i)).collect(),
                        },
                        Rule::field => ExprKind::Field {
                            base: Box::new(acc),
                            field: self.ident(suffix.into_inner().next().expect("field name")),
                        },
                        r => unreachable!("postfix {r:?}"),
                    };
                    acc = Expr { kind, span: s };
                }
                acc
            }
            Rule::int => Expr {
                kind: p.as_str().parse().map_or(ExprKind::Error, ExprKind::Int),
                span,
            },
            Rule::float => Expr {
                kind: p.as_str().parse().map_or(ExprKind::Error, ExprKind::Float),
                span,
            },
            Rule::bool => Expr {
                kind: ExprKind::Bool(p.as_str() == "true"),
                span,
            },
            Rule::string => Expr {
                kind: ExprKind::Str(unquote(p.as_str())),
                span,
            },
            Rule::ident => Expr {
                kind: ExprKind::Name(self.ident(p)),
                span,
            },
            Rule::list => Expr {
                kind: ExprKind::List(p.into_inner().map(|q| self.expr(q)).collect()),
                span,
            },
            Rule::if_expr => {
                let mut it = p.into_inner().filter(|q| !is_keyword_token(q.as_rule()));
                let cond = self.expr(it.next().expect("if condition"));
                let then = self.block(it.next().expect("then block"));
                let other = it.next().expect("else branch");
                let otherwise = if other.as_rule() == Rule::if_expr {
                    // `else if`: a block holding the nested `if`.
                    let nested = self.expr(other);
                    Block {
                        span: nested.span,
                        stmts: vec![Stmt::Expr(nested)],
                    }
                } else {
                    self.block(other)
                };
                Expr {
                    kind: ExprKind::If {
                        cond: Box::new(cond),
                        then: Box::new(then),
                        otherwise: Box::new(otherwise),
                    },
                    span,
                }
            }
            Rule::scan => Expr {
                kind: ExprKind::Scan(Box::new(self.scan(p))),
                span,
            },
            r => unreachable!("expr {r:?}"),
        }
    }

    fn scan(&self, p: Pair<Rule>) -> Scan {
        let mut seqs = vec![];
        let mut carries = vec![];
        let mut axis = None;
        let mut body = None;
        let mut keyword = self.span(&p);
        for q in p.into_inner() {
            match q.as_rule() {
                Rule::scan_kw => keyword = self.span(&q),
                Rule::scan_seq | Rule::scan_carry => {
                    let rule = q.as_rule();
                    let mut it = q.into_inner();
                    let name = self.ident(it.next().expect("scan name"));
                    let value = it.find(|r| r.as_rule() != Rule::in_kw).map(|r| self.expr(r)).expect("scan value");
                    if rule == Rule::scan_seq {
                        seqs.push((name, value));
                    } else {
                        carries.push((name, value));
                    }
                }
                Rule::expr => axis = Some(self.expr(q)),
                Rule::block => body = Some(self.block(q)),
                Rule::along_kw | Rule::from_kw => {}
                r => unreachable!("scan part {r:?}"),
            }
        }
        Scan {
            seqs,
            axis,
            carries,
            body: body.expect("scan body"),
            keyword,
        }
    }

    fn index_item(&self, p: Pair<Rule>) -> IndexItem {
        let q = p.into_inner().next().expect("index");
        let span = self.span(&q);
        match q.as_rule() {
            Rule::ellipsis => IndexItem::Ellipsis(span),
            Rule::slice => {
                // Parts in order, split by the colons: start, end, step.
                let mut parts: [Option<Expr>; 3] = [None, None, None];
                let mut at = 0;
                for r in q.into_inner() {
                    match r.as_rule() {
                        Rule::slice_colon => at += 1,
                        _ => parts[at] = Some(self.expr(r)),
                    }
                }
                let [start, end, step] = parts;
                match (at, start) {
                    // No colon: an index, not a slice.
                    (0, Some(e)) => IndexItem::At(e),
                    (_, start) => IndexItem::Slice { start, end, step, span },
                }
            }
            _ => IndexItem::At(self.expr(q)),
        }
    }

    fn arg(&self, p: Pair<Rule>) -> Arg {
        let span = self.span(&p);
        let mut name = None;
        let mut exprs = vec![];
        for q in p.into_inner() {
            match q.as_rule() {
                Rule::ident => name = Some(self.ident(q)),
                _ => exprs.push(self.expr(q)),
            }
        }
        let mut it = exprs.into_iter();
        let value = it.next().expect("arg value");
        Arg {
            name,
            value,
            arrow_to: it.next(),
            span,
        }
    }
}

/// The keyword tokens of `if`/`else` and `step ... with ... on`, which
/// carry no content of their own.
fn is_keyword_token(r: Rule) -> bool {
    matches!(r, Rule::kw_if | Rule::kw_else | Rule::kw_step | Rule::kw_with | Rule::kw_on)
}

fn unquote(s: &str) -> String {
    s.trim_start_matches('"').trim_end_matches('"').to_string()
}
