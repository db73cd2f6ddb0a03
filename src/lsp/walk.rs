//! Walks over the AST: every expression, and every name a declaration
//! binds (parameters, `let`, `state`, layer members).

use crate::base::Span;
use crate::syntax::ast::*;

/// Call `f` on every expression of `m`, outer before inner.
pub fn exprs(m: &Module, f: &mut dyn FnMut(&Expr)) {
    for item in &m.items {
        item_exprs(item, f);
    }
}

fn params(ps: &[Param], f: &mut dyn FnMut(&Expr)) {
    for p in ps {
        if let Some(d) = &p.default {
            expr(d, f);
        }
    }
}

fn body(b: &Body, f: &mut dyn FnMut(&Expr)) {
    match b {
        Body::Expr(e) => expr(e, f),
        Body::Block(b) => block(b, f),
    }
}

fn block(b: &Block, f: &mut dyn FnMut(&Expr)) {
    for s in &b.stmts {
        match s {
            Stmt::Let { value, .. } | Stmt::Return { value, .. } | Stmt::State { value, .. } | Stmt::Assign { value, .. } => expr(value, f),
            Stmt::Expr(e) => expr(e, f),
        }
    }
}

fn fn_decl(d: &FnDecl, f: &mut dyn FnMut(&Expr)) {
    params(&d.params, f);
    body(&d.body, f);
}

fn item_exprs(item: &Item, f: &mut dyn FnMut(&Expr)) {
    match item {
        Item::Use(_) => {}
        Item::Fn(d) => fn_decl(d, f),
        Item::Layer(d) => {
            params(&d.params, f);
            for m in &d.members {
                match m {
                    LayerMember::Param(t) | LayerMember::Buffer(t) => expr(&t.init, f),
                    LayerMember::Fn(d) => fn_decl(d, f),
                    LayerMember::Let { value, .. } => expr(value, f),
                }
            }
        }
        Item::Model(d) => {
            params(&d.inputs, f);
            body(&d.body, f);
        }
        Item::Optimizer(d) => {
            params(&d.params, f);
            block(&d.body, f);
        }
        Item::Train(d) => {
            for field in &d.fields {
                expr(&field.value, f);
            }
            for s in &d.steps {
                expr(&s.optimizer, f);
                block(&s.body, f);
            }
        }
    }
}

pub fn expr(e: &Expr, f: &mut dyn FnMut(&Expr)) {
    f(e);
    match &e.kind {
        ExprKind::List(items) => items.iter().for_each(|x| expr(x, f)),
        ExprKind::Neg(x) => expr(x, f),
        ExprKind::Binary(_, a, b) | ExprKind::Pipe(a, b) => {
            expr(a, f);
            expr(b, f);
        }
        ExprKind::If { cond, then, otherwise } => {
            expr(cond, f);
            block(then, f);
            block(otherwise, f);
        }
        ExprKind::Call { callee, args } => {
            expr(callee, f);
            for a in args {
                expr(&a.value, f);
                if let Some(to) = &a.arrow_to {
                    expr(to, f);
                }
            }
        }
        ExprKind::Index { base, items } => {
            expr(base, f);
            for it in items {
                match it {
                    IndexItem::At(x) => expr(x, f),
                    IndexItem::Slice { start, end, step, .. } => [start, end, step].into_iter().flatten().for_each(|x| expr(x, f)),
                    IndexItem::Ellipsis(_) => {}
                }
            }
        }
        ExprKind::Field { base, .. } => expr(base, f),
        ExprKind::Scan(s) => {
            for (_, x) in s.seqs.iter().chain(&s.carries) {
                expr(x, f);
            }
            if let Some(a) = &s.axis {
                expr(a, f);
            }
            block(&s.body, f);
        }
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Bool(_) | ExprKind::Str(_) | ExprKind::Name(_) | ExprKind::Error => {}
    }
}

/// What kind of name a binder introduces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinderKind {
    Param,
    Let,
    State,
    Tensor,
    Method,
}

/// A name bound inside a declaration.
#[derive(Clone, Debug)]
pub struct Binder {
    pub name: Ident,
    pub kind: BinderKind,
    /// The whole binding (for document symbols).
    pub span: Span,
}

/// Names bound inside `item`, in source order.
pub fn binders(item: &Item) -> Vec<Binder> {
    let mut out = vec![];
    let param = |ps: &[Param], out: &mut Vec<Binder>| {
        for p in ps {
            out.push(Binder {
                name: p.name.clone(),
                kind: BinderKind::Param,
                span: p.span,
            });
        }
    };
    fn stmts(b: &Block, out: &mut Vec<Binder>) {
        for s in &b.stmts {
            match s {
                Stmt::Let { name, span, .. } => out.push(Binder {
                    name: name.clone(),
                    kind: BinderKind::Let,
                    span: *span,
                }),
                Stmt::State { name, span, .. } => out.push(Binder {
                    name: name.clone(),
                    kind: BinderKind::State,
                    span: *span,
                }),
                _ => {}
            }
        }
    }
    let body = |b: &Body, out: &mut Vec<Binder>| {
        if let Body::Block(b) = b {
            stmts(b, out);
        }
    };
    match item {
        Item::Use(_) | Item::Train(_) => {}
        Item::Fn(d) => {
            param(&d.params, &mut out);
            body(&d.body, &mut out);
        }
        Item::Model(d) => {
            param(&d.inputs, &mut out);
            body(&d.body, &mut out);
        }
        Item::Optimizer(d) => {
            param(&d.params, &mut out);
            stmts(&d.body, &mut out);
        }
        Item::Layer(d) => {
            param(&d.params, &mut out);
            for m in &d.members {
                match m {
                    LayerMember::Param(t) | LayerMember::Buffer(t) => out.push(Binder {
                        name: t.name.clone(),
                        kind: BinderKind::Tensor,
                        span: t.span,
                    }),
                    LayerMember::Let { name, span, .. } => out.push(Binder {
                        name: name.clone(),
                        kind: BinderKind::Let,
                        span: *span,
                    }),
                    LayerMember::Fn(f) => {
                        out.push(Binder {
                            name: f.name.clone(),
                            kind: BinderKind::Method,
                            span: f.span,
                        });
                        param(&f.params, &mut out);
                        body(&f.body, &mut out);
                    }
                }
            }
        }
    }
    out
}

/// The top-level item whose span contains `offset`.
pub fn item_at(m: &Module, offset: usize) -> Option<&Item> {
    m.items
        .iter()
        .find(|i| (i.span().start as usize) <= offset && offset <= i.span().end as usize)
}
