//! Builds a [`Func`] one instruction at a time, inferring result types.

use super::{verify::infer, BinaryOp, CmpOp, DType, Dim, Func, Inst, Op, Shape, Type, UnaryOp, Value};

pub struct Builder {
    func: Func,
}

impl Builder {
    pub fn new(name: impl Into<String>) -> Builder {
        Builder {
            func: Func {
                name: name.into(),
                param_names: vec![],
                params: vec![],
                insts: vec![],
                results: vec![],
                types: vec![],
            },
        }
    }

    /// Continue building onto an existing function (e.g. to append the
    /// backward pass and the optimizer update to a forward function).
    pub fn from_func(func: Func) -> Builder {
        Builder { func }
    }

    pub fn param(&mut self, name: impl Into<String>, ty: Type) -> Value {
        let v = Value(self.func.types.len() as u32);
        self.func.types.push(ty);
        self.func.params.push(v);
        self.func.param_names.push(name.into());
        v
    }

    pub fn ty(&self, v: Value) -> &Type {
        self.func.ty(v)
    }

    pub fn shape(&self, v: Value) -> Shape {
        self.func.ty(v).shape.clone()
    }

    /// Append an instruction. Panics on ill-typed input: callers (sema-checked
    /// lowering, autodiff) only build valid IR, so this is an internal error.
    pub fn push(&mut self, op: Op, args: &[Value]) -> Value {
        let tys: Vec<&Type> = args.iter().map(|&a| self.func.ty(a)).collect();
        let ty = match infer(&op, &tys) {
            Ok(t) => t,
            Err(e) => panic!("internal error: ill-typed IR built: {e}"),
        };
        let v = Value(self.func.types.len() as u32);
        self.func.types.push(ty);
        self.func.insts.push(Inst {
            result: v,
            op,
            args: args.to_vec(),
        });
        v
    }

    pub fn finish(mut self, results: &[Value]) -> Func {
        self.func.results = results.to_vec();
        self.func
    }

    pub fn func(&self) -> &Func {
        &self.func
    }

    /// Point every instruction reading scan `old` at `new` instead: the
    /// same body, operands and outputs with more outputs after them
    /// (`autodiff::scan` widens a forward scan by the residuals its
    /// backward pass reads), so no instruction's type changes.
    pub fn replace_scan(&mut self, old: &std::sync::Arc<super::scan::Scan>, new: &std::sync::Arc<super::scan::Scan>) {
        for inst in &mut self.func.insts {
            if let Op::Scan { scan, .. } = &mut inst.op {
                if std::sync::Arc::ptr_eq(scan, old) {
                    *scan = new.clone();
                }
            }
        }
    }

    /// Copy the body of `f` into this function with its params bound to
    /// `args`; returns the values of its results.
    pub fn inline(&mut self, f: &Func, args: &[Value]) -> Vec<Value> {
        assert_eq!(f.params.len(), args.len(), "internal error: inline arity");
        let mut map: std::collections::HashMap<Value, Value> = f.params.iter().copied().zip(args.iter().copied()).collect();
        for inst in &f.insts {
            let new_args: Vec<Value> = inst.args.iter().map(|a| map[a]).collect();
            let v = self.push(inst.op.clone(), &new_args);
            map.insert(inst.result, v);
        }
        f.results.iter().map(|r| map[r]).collect()
    }

    // ---- conveniences used by lowering and autodiff ----

    pub fn constant(&mut self, x: f64) -> Value {
        self.push(Op::Const(x), &[])
    }
    /// A constant broadcast to `shape`.
    pub fn fill(&mut self, x: f64, shape: &[Dim]) -> Value {
        let c = self.constant(x);
        self.broadcast(c, shape)
    }
    pub fn unary(&mut self, op: UnaryOp, a: Value) -> Value {
        self.push(Op::Unary(op), &[a])
    }
    pub fn binary(&mut self, op: BinaryOp, a: Value, b: Value) -> Value {
        self.push(Op::Binary(op), &[a, b])
    }
    pub fn compare(&mut self, op: CmpOp, a: Value, b: Value) -> Value {
        self.push(Op::Compare(op), &[a, b])
    }
    pub fn add(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::Add, a, b)
    }
    pub fn sub(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::Sub, a, b)
    }
    pub fn mul(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::Mul, a, b)
    }
    pub fn div(&mut self, a: Value, b: Value) -> Value {
        self.binary(BinaryOp::Div, a, b)
    }
    pub fn neg(&mut self, a: Value) -> Value {
        self.unary(UnaryOp::Neg, a)
    }
    pub fn select(&mut self, c: Value, a: Value, b: Value) -> Value {
        self.push(Op::Select, &[c, a, b])
    }
    /// Broadcast to `shape`; a no-op when the shape already matches.
    pub fn broadcast(&mut self, a: Value, shape: &[Dim]) -> Value {
        if self.func.ty(a).shape == shape {
            return a;
        }
        self.push(Op::Broadcast { shape: shape.to_vec() }, &[a])
    }
    pub fn reduce_sum(&mut self, a: Value, axes: Vec<usize>, keep: bool) -> Value {
        if axes.is_empty() {
            return a;
        }
        self.push(Op::ReduceSum { axes, keep }, &[a])
    }
    pub fn reduce_max(&mut self, a: Value, axes: Vec<usize>, keep: bool) -> Value {
        if axes.is_empty() {
            return a;
        }
        self.push(Op::ReduceMax { axes, keep }, &[a])
    }
    /// Reshape; a no-op when the shape already matches.
    pub fn reshape(&mut self, a: Value, shape: &[Dim]) -> Value {
        if self.func.ty(a).shape == shape {
            return a;
        }
        self.push(Op::Reshape { shape: shape.to_vec() }, &[a])
    }
    pub fn transpose(&mut self, a: Value, perm: Vec<usize>) -> Value {
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return a;
        }
        self.push(Op::Transpose { perm }, &[a])
    }
    pub fn matmul(&mut self, a: Value, b: Value) -> Value {
        self.push(Op::MatMul, &[a, b])
    }
    /// Elements `start + stride * j` of every axis, `shape` of them.
    pub fn slice(&mut self, a: Value, start: Vec<usize>, stride: Vec<usize>, shape: &[Dim]) -> Value {
        if self.func.ty(a).shape == shape && start.iter().all(|&s| s == 0) {
            return a;
        }
        self.push(
            Op::Slice {
                start,
                stride,
                shape: shape.to_vec(),
            },
            &[a],
        )
    }
    pub fn reverse(&mut self, a: Value, axes: Vec<usize>) -> Value {
        if axes.is_empty() {
            return a;
        }
        self.push(Op::Reverse { axes }, &[a])
    }
    /// Zeros around `a`: `low` before and `high` after each axis.
    pub fn pad(&mut self, a: Value, low: Vec<usize>, high: Vec<usize>) -> Value {
        let interior = vec![0; low.len()];
        if low.iter().chain(&high).all(|&w| w == 0) {
            return a;
        }
        self.push(Op::Pad { low, high, interior }, &[a])
    }
    /// `parts` joined along `axis`, two at a time.
    /// `parts` joined along `axis` by binary concats in a balanced tree,
    /// so each element is copied about log2(len) times rather than up to
    /// len times (the hundreds of steps a `scan` stacks).
    pub fn concat(&mut self, parts: &[Value], axis: usize) -> Value {
        match parts {
            [one] => *one,
            _ => {
                let (left, right) = parts.split_at(parts.len() / 2);
                let (l, r) = (self.concat(left, axis), self.concat(right, axis));
                self.push(Op::Concat { axis }, &[l, r])
            }
        }
    }
    pub fn gather(&mut self, x: Value, ids: Value, axis: usize) -> Value {
        self.push(Op::Gather { axis }, &[x, ids])
    }
    pub fn iota(&mut self, shape: &[Dim], axis: usize) -> Value {
        self.push(
            Op::Iota {
                shape: shape.to_vec(),
                axis,
            },
            &[],
        )
    }
    pub fn cast(&mut self, a: Value, to: DType) -> Value {
        if self.func.ty(a).dtype == to {
            return a;
        }
        self.push(Op::Cast { to }, &[a])
    }
}
