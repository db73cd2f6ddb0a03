//! The abstract syntax tree. Every node carries the span of its source text.

use crate::base::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Clone, Debug, Default)]
pub struct Module {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug)]
pub enum Item {
    Use(UseDecl),
    Fn(FnDecl),
    Layer(LayerDecl),
    Model(ModelDecl),
    Optimizer(OptimizerDecl),
    Train(TrainDecl),
}

impl Item {
    /// The declared name (`None` for `use`).
    pub fn name(&self) -> Option<&Ident> {
        match self {
            Item::Use(_) => None,
            Item::Fn(d) => Some(&d.name),
            Item::Layer(d) => Some(&d.name),
            Item::Model(d) => Some(&d.name),
            Item::Optimizer(d) => Some(&d.name),
            Item::Train(d) => Some(&d.model),
        }
    }
    pub fn span(&self) -> Span {
        match self {
            Item::Use(d) => d.span,
            Item::Fn(d) => d.span,
            Item::Layer(d) => d.span,
            Item::Model(d) => d.span,
            Item::Optimizer(d) => d.span,
            Item::Train(d) => d.span,
        }
    }
}

#[derive(Clone, Debug)]
pub struct UseDecl {
    /// `use losses` names `losses`; `use "dir/file.nn"` names a path.
    pub target: String,
    pub target_span: Span,
    pub span: Span,
}

/// A parameter of a `fn`, `layer`, `model` or `optimizer`.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub default: Option<Expr>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct FnDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub ret: Option<TypeExpr>,
    pub body: Body,
    /// `///` comment lines directly above the declaration.
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum Body {
    Expr(Expr),
    Block(Block),
}

impl Body {
    pub fn span(&self) -> Span {
        match self {
            Body::Expr(e) => e.span,
            Body::Block(b) => b.span,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Block {
    pub stmts: Vec<Stmt>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssignOp {
    Set,
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Clone, Debug)]
pub enum Stmt {
    Let {
        name: Ident,
        ty: Option<TypeExpr>,
        value: Expr,
        span: Span,
    },
    Return {
        value: Expr,
        span: Span,
    },
    /// `state m = zeros_like(param)` in an optimizer.
    State {
        name: Ident,
        value: Expr,
        span: Span,
    },
    Assign {
        target: Ident,
        op: AssignOp,
        value: Expr,
        span: Span,
    },
    Expr(Expr),
}

impl Stmt {
    pub fn span(&self) -> Span {
        match self {
            Stmt::Let { span, .. } | Stmt::Return { span, .. } | Stmt::State { span, .. } | Stmt::Assign { span, .. } => *span,
            Stmt::Expr(e) => e.span,
        }
    }
}

#[derive(Clone, Debug)]
pub struct LayerDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub members: Vec<LayerMember>,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum LayerMember {
    /// `param W: [inputs, outputs] = glorot_uniform()`: trainable.
    Param(TensorDecl),
    /// `buffer mean: [features] = zeros()`: state that is not trained.
    Buffer(TensorDecl),
    Fn(FnDecl),
    Let {
        name: Ident,
        ty: Option<TypeExpr>,
        value: Expr,
        span: Span,
    },
}

#[derive(Clone, Debug)]
pub struct TensorDecl {
    pub name: Ident,
    pub ty: TypeExpr,
    pub init: Expr,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct ModelDecl {
    pub name: Ident,
    pub inputs: Vec<Param>,
    pub ret: Option<TypeExpr>,
    pub body: Body,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct OptimizerDecl {
    pub name: Ident,
    pub params: Vec<Param>,
    pub body: Block,
    pub doc: Option<String>,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct TrainDecl {
    pub model: Ident,
    pub fields: Vec<TrainField>,
    /// `step NAME with OPTIMIZER on MODEL { ... }`, in order.
    pub steps: Vec<StepDecl>,
    pub span: Span,
}

/// One step of a `train` block: its optimizer, the model it trains, and a
/// body of `let`s, `loss = ...` and `every = k`.
#[derive(Clone, Debug)]
pub struct StepDecl {
    pub name: Ident,
    pub optimizer: Expr,
    pub model: Ident,
    pub body: Block,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub struct TrainField {
    pub name: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum TypeExpr {
    /// `f32[batch, 784]`, `i32[b]`, `[]`.
    Tensor {
        dtype: Option<Ident>,
        dims: Vec<DimExpr>,
        span: Span,
    },
    /// `fn`: a function-valued argument (an activation).
    Fn(Span),
    /// `int`, `float`, `str`, `bool`.
    Named(Ident),
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Tensor { span, .. } | TypeExpr::Fn(span) => *span,
            TypeExpr::Named(i) => i.span,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DimOp {
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Clone, Debug)]
pub enum DimExpr {
    Int(i64, Span),
    Name(Ident),
    /// `...`: any number of leading dims.
    Ellipsis(Span),
    Bin(DimOp, Box<DimExpr>, Box<DimExpr>, Span),
}

impl DimExpr {
    pub fn span(&self) -> Span {
        match self {
            DimExpr::Int(_, s) | DimExpr::Ellipsis(s) | DimExpr::Bin(_, _, _, s) => *s,
            DimExpr::Name(i) => i.span,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    /// `a % b`: the remainder of compile-time integers, with the sign of `b`.
    Rem,
    MatMul,
    Pow,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
            BinOp::MatMul => "@",
            BinOp::Pow => "^",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Name(Ident),
    List(Vec<Expr>),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call {
        callee: Box<Expr>,
        args: Vec<Arg>,
    },
    /// `lhs |> rhs`: apply `rhs` to `lhs` (as the first argument when `rhs` is a call).
    Pipe(Box<Expr>, Box<Expr>),
    /// `x[:, t, 0:64]`: basic indexing, one item per indexed axis.
    Index {
        base: Box<Expr>,
        items: Vec<IndexItem>,
    },
    /// `fc1.W`: a member of a layer.
    Field {
        base: Box<Expr>,
        field: Ident,
    },
    /// `if cond { ... } else { ... }` on a compile-time condition such as
    /// `training`; each branch's value is its last expression. `else if`
    /// is an `else` block holding another `If`.
    If {
        cond: Box<Expr>,
        then: Box<Block>,
        otherwise: Box<Block>,
    },
    /// `scan x in xs along 1 from h = h0 { h = ... }`: a loop over time.
    Scan(Box<Scan>),
    /// A syntax error placeholder; never reported twice.
    Error,
}

/// A loop over the steps of one or more sequences along an axis, carrying
/// state from step to step (the recurrence `h_t = f(x_t, h_{t-1})`). Its
/// value is the first carried variable after every step, stacked along
/// the axis.
#[derive(Clone, Debug)]
pub struct Scan {
    /// `x in xs`: `x` is bound to one step of `xs` (the axis dropped).
    pub seqs: Vec<(Ident, Expr)>,
    /// `along 1`; the axis after the batch when absent.
    pub axis: Option<Expr>,
    /// `from h = h0`: each carried variable and its value before step 0.
    pub carries: Vec<(Ident, Expr)>,
    /// `let`s and assignments of the carried variables.
    pub body: Block,
    /// The `scan` keyword, where errors about the whole loop point.
    pub keyword: Span,
}

#[derive(Clone, Debug)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    /// The `128` of `784 -> 128`: a second positional argument.
    pub arrow_to: Option<Expr>,
    pub span: Span,
}

/// One entry between the brackets of `x[...]`.
#[derive(Clone, Debug)]
pub enum IndexItem {
    /// `t`, `-1`: one position; the axis is dropped.
    At(Expr),
    /// `start:end:step`, each part optional; the axis is kept.
    Slice {
        start: Option<Expr>,
        end: Option<Expr>,
        step: Option<Expr>,
        span: Span,
    },
    /// `...`: as many whole axes as the other items leave.
    Ellipsis(Span),
}

impl IndexItem {
    pub fn span(&self) -> Span {
        match self {
            IndexItem::At(e) => e.span,
            IndexItem::Slice { span, .. } | IndexItem::Ellipsis(span) => *span,
        }
    }
}
