//! Layers and models in the elaborator: construction (parameters get
//! names like `dense1.W`), application with input checks that suggest a
//! fix, and models that share their layers across applications.

use super::elab::{ArgVal, Elab, Mismatch, ParamInfo};
use super::value::{Callable, Env, LayerInst, LayerRecord, Tensor, TensorTy, Val};
use crate::base::Span;
use crate::diag::{Diagnostic, Edit, Fix};
use crate::ir::{self, DType};
use crate::syntax::ast::*;
use std::collections::HashMap;
use std::rc::Rc;

impl Elab<'_> {
    // ---- layers and models ------------------------------------------------

    /// The layer's name in its scope and whether the source chose it
    /// (`let fc1 = ...`). A generated name (`dense1`) skips names already
    /// taken, so it never collides with a `let` that came first.
    pub(super) fn fresh_layer_name(&mut self, decl: &LayerDecl) -> (String, bool) {
        if let Some(n) = self.pending_name.take() {
            return (n, true);
        }
        let base = decl.name.name.to_lowercase();
        loop {
            let c = self.name_counts.entry(base.clone()).or_insert(0);
            *c += 1;
            let local = format!("{base}{c}");
            if self.layer_named(&self.scoped(&local)).is_none() {
                return (local, false);
            }
        }
    }

    /// `local` inside the layers being built (`block.fc1`).
    fn scoped(&self, local: &str) -> String {
        if self.prefix.is_empty() {
            local.to_string()
        } else {
            format!("{}.{local}", self.prefix.join("."))
        }
    }

    fn layer_named(&self, name: &str) -> Option<&super::value::LayerRecord> {
        self.layers.iter().find(|l| l.name == name)
    }

    pub(super) fn construct_layer(&mut self, decl: Rc<LayerDecl>, args: Vec<ArgVal>, span: Span) -> Val {
        if !self.enter(super::guard::key(&decl, 0), &decl.name.name, span) {
            return Val::Error;
        }
        let out = self.construct_layer_entered(decl, args, span);
        self.leave();
        out
    }

    fn construct_layer_entered(&mut self, decl: Rc<LayerDecl>, args: Vec<ArgVal>, span: Span) -> Val {
        if self.builds_itself(super::guard::key(&decl, 0), &decl.name.name, span) {
            return Val::Error;
        }
        // The call path since the model body began identifies this layer.
        let mut key: Vec<Span> = self.frames[self.model_base.min(self.frames.len())..].to_vec();
        key.extend(self.repeats.iter().map(|&(s, i)| Span { end: i, ..s }));
        if let Some(inst) = self.layer_cache.get(&key) {
            self.pending_name = None;
            return Val::Layer(inst.clone());
        }
        let (local, chosen) = self.fresh_layer_name(&decl);
        let name = self.scoped(&local);
        // A layer's name is the key of its parameters (`fc1.W`): two layers
        // under one name would share one store entry of the wrong shape.
        if let Some(prev) = self.layer_named(&name) {
            let (prev_span, prev_kind) = (prev.span, prev.kind.clone());
            let label = if chosen {
                "first defined here"
            } else {
                "this layer is already named so"
            };
            // The same `let` run twice: a function that builds a layer,
            // called twice.
            let help = if prev_span == span {
                "a function builds its layers again each time it is called, under the same names; \
                 declare the block as a `layer` and build one per use, or build the layers where the function is called"
                    .to_string()
            } else {
                format!("give this layer its own name, such as `{local}_2`; its parameters are named after it")
            };
            let d = Diagnostic::error("E0102", format!("layer `{local}` is defined twice"), span, "defined again here")
                .with_secondary(prev_span, format!("{label} ({prev_kind})"))
                .with_help(help);
            self.report(d);
            return Val::Error;
        }
        let mut arg_spans = HashMap::new();
        for (p, a) in decl.params.iter().zip(args.iter().filter(|a| a.name.is_none())) {
            arg_spans.insert(p.name.name.clone(), a.span);
        }
        for a in &args {
            if let Some(n) = &a.name {
                arg_spans.insert(n.name.clone(), a.span);
            }
        }
        let Some(mut env) = self.bind(&decl.params, args, &decl.name.name, span, &Env::default()) else {
            return Val::Error;
        };
        self.prefix.push(local);
        let mut created = vec![];
        let mut buffers = vec![];
        for m in &decl.members {
            match m {
                LayerMember::Param(t) | LayerMember::Buffer(t) => {
                    let trainable = matches!(m, LayerMember::Param(_));
                    let v = self.create_param(&name, t, &env, trainable);
                    if let Val::Tensor(tv) = &v {
                        if let Some(shape) = &tv.ty.shape {
                            if !self.param_has_elements(&name, t, shape, span) {
                                self.prefix.pop();
                                return Val::Error;
                            }
                            let list = if trainable { &mut created } else { &mut buffers };
                            list.push((t.name.name.clone(), ir::Type::f32(shape.clone())));
                        }
                    }
                    env.vars.insert(t.name.name.clone(), v);
                    if !trainable {
                        env.buffers.push(t.name.name.clone());
                    }
                }
                LayerMember::Let { name: n, value, .. } => {
                    let v = self.eval_let(n, value, &mut env);
                    env.vars.insert(n.name.clone(), v);
                }
                LayerMember::Fn(_) => {}
            }
        }
        self.prefix.pop();
        let env = Rc::new(env);
        // Methods see the finished layer scope.
        let mut with_methods = Env {
            vars: HashMap::new(),
            parent: Some(env.clone()),
            ..Default::default()
        };
        for m in &decl.members {
            if let LayerMember::Fn(f) = m {
                with_methods.vars.insert(
                    f.name.name.clone(),
                    Val::Fn(Callable::Decl {
                        decl: Rc::new(f.clone()),
                        env: Some(env.clone()),
                    }),
                );
            }
        }
        let inst = Rc::new(LayerInst {
            decl: decl.clone(),
            name: name.clone(),
            env: Rc::new(with_methods),
            call_span: span,
            arg_spans,
            record: self.layers.len(),
        });
        let n_buffers = buffers.len();
        created.extend(buffers);
        self.layers.push(LayerRecord {
            name,
            kind: decl.name.name.clone(),
            span,
            params: created,
            output: None,
            applied: Vec::new(),
            buffers: n_buffers,
        });
        self.layer_cache.insert(key, inst.clone());
        self.instances.push(inst.clone());
        Val::Layer(inst)
    }

    /// E0333 when a parameter of the layer built at `span` has a dim of
    /// 0: such a layer trains nothing and reports plausible losses.
    fn param_has_elements(&mut self, layer: &str, t: &TensorDecl, shape: &[ir::Dim], span: Span) -> bool {
        if !shape.contains(&ir::Dim::Known(0)) {
            return true;
        }
        let d = Diagnostic::error(
            "E0333",
            format!(
                "parameter `{layer}.{}` has an empty dimension: {}",
                t.name.name,
                ir::shape_to_string(shape)
            ),
            span,
            "this layer has a size of 0",
        )
        .with_secondary(t.ty.span(), "declared here")
        .with_help("give every size of the layer a value of at least 1");
        self.report(d);
        false
    }

    pub(super) fn create_param(&mut self, layer: &str, t: &TensorDecl, env: &Env, trainable: bool) -> Val {
        if !self.param_dims_known(t, env) {
            return Val::Error;
        }
        let Some(shape) = self.eval_shape(&t.ty, env) else {
            return Val::Error;
        };
        let Some(shape) = shape else {
            return self.tensor(TensorTy::unknown(), None);
        };
        let name = format!("{layer}.{}", t.name.name);
        // At the shape, the part to change (the declaration's span runs on
        // to the next member).
        if !self.check_size(&shape, t.ty.span(), &format!("parameter `{name}`")) {
            return Val::Error;
        }
        let ty = ir::Type::f32(shape.clone());
        if !self.lowering {
            return self.tensor(TensorTy::f32(shape), None);
        }
        let v = self.b.param(name.clone(), ty.clone());
        self.params.push(ParamInfo {
            name,
            ty,
            value: v,
            init: t.init.clone(),
            env: Rc::new(env.clone()),
            trainable,
            model: self.model_stack.last().cloned(),
            span: t.span,
            shape_span: t.ty.span(),
        });
        self.tensor(TensorTy::f32(shape), Some(v))
    }

    /// `repeat(n, expr)`: `expr` evaluated `n` times, so a layer in it is
    /// built `n` times with its own parameters: a list of `n` layers (a
    /// stack of encoder layers), named like PyTorch's `ModuleList` after the
    /// `let` that holds them (`blocks.0`, `blocks.1`, ...). It is a special
    /// form (`elab` evaluates `expr` here, not before the call) because an
    /// argument evaluated once would be one layer shared `n` times.
    pub(super) fn repeat(&mut self, args: &[crate::syntax::ast::Arg], env: &mut Env, span: Span) -> Val {
        let base = self.pending_name.take();
        let [count, body] = args else {
            let d = Diagnostic::error(
                "E0103",
                format!("`repeat` takes a count and an expression, found {} arguments", args.len()),
                span,
                "call `repeat(n, Layer(...))`",
            );
            self.report(d);
            return Val::Error;
        };
        let n = match self.eval(&count.value, env) {
            Val::Int(n) if (1..=super::guard::MAX_LIST_VALUES as i64).contains(&n) => n as usize,
            Val::Any => return Val::Any,
            Val::Error => return Val::Error,
            other => {
                let d = Diagnostic::error(
                    "E0203",
                    "the count of `repeat` must be a positive compile-time integer",
                    count.value.span,
                    format!("this is {}", other.kind()),
                );
                self.report(d);
                return Val::Error;
            }
        };
        let mut items = Vec::with_capacity(n);
        for i in 0..n {
            self.pending_name = base.as_ref().map(|b| format!("{b}.{i}"));
            self.repeats.push((body.value.span, i as u32));
            let v = self.eval(&body.value, env);
            self.repeats.pop();
            match v {
                Val::Error => return Val::Error,
                v => items.push(v),
            }
        }
        self.pending_name = None;
        Val::List(items)
    }

    /// A list of layers applied to an input: each in turn, the output of one
    /// the input of the next; further arguments (a mask) go to every layer.
    pub(super) fn apply_stack(&mut self, layers: Vec<Val>, mut args: Vec<ArgVal>, span: Span) -> Val {
        if args.is_empty() {
            return Val::Error;
        }
        for layer in layers {
            let Val::Layer(inst) = layer else { return Val::Error };
            let out = self.apply_layer(&inst, args.clone(), span);
            if matches!(out, Val::Error) {
                return Val::Error;
            }
            args[0].val = out;
        }
        args.swap_remove(0).val
    }

    pub(super) fn apply_layer(&mut self, inst: &Rc<LayerInst>, args: Vec<ArgVal>, span: Span) -> Val {
        let Some(Val::Fn(Callable::Decl { decl, env })) = inst.env.vars.get("forward").cloned() else {
            let d = Diagnostic::error(
                "E0109",
                format!("layer `{}` has no `forward` function", inst.decl.name.name),
                span,
                "applied here",
            )
            .with_secondary(inst.decl.name.span, "declared here");
            self.report(d);
            return Val::Error;
        };
        // Check the input shape here so the error names the layer and
        // suggests arguments that fit.
        if let (Some(p), Some(a)) = (decl.params.first(), args.first()) {
            if let (Some(TypeExpr::Tensor { dims, span: pspan, .. }), Val::Tensor(t)) = (&p.ty, &a.val) {
                let mut probe = Env {
                    vars: HashMap::new(),
                    parent: env.clone(),
                    ..Default::default()
                };
                if let Err(m) = self.match_pattern(dims, &t.ty, &mut probe) {
                    self.layer_input_error(inst, &decl.name.name, dims, *pspan, t, &m, a.span, span);
                    return Val::Error;
                }
            }
        }
        self.applying.push(super::guard::key(&inst.decl, 0));
        let start = self.b.func().insts.len();
        let out = self.call_fn(&decl, env, args, span);
        let end = self.b.func().insts.len();
        self.applying.pop();
        if let Some(r) = self.layers.get_mut(inst.record) {
            r.applied.push((start, end));
        }
        if let Val::Tensor(t) = &out {
            if let Some(r) = self.layers.get_mut(inst.record).filter(|r| r.output.is_none()) {
                r.output = Some(t.ty.to_string());
            }
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn layer_input_error(
        &mut self,
        inst: &LayerInst,
        _method: &str,
        dims: &[DimExpr],
        pspan: Span,
        t: &Tensor,
        m: &Mismatch,
        arg_span: Span,
        span: Span,
    ) {
        let call_span = if inst.call_span.file == span.file { inst.call_span } else { span };
        let call_text = self.text(call_span).to_string();
        let lname = &inst.decl.name.name;
        let mut d = Diagnostic::error(
            "E0301",
            format!(
                "{} expects input {}, found {}",
                one_line(&call_text),
                self.pattern_text_in(dims, &inst.env),
                t.ty
            ),
            call_span,
            format!("input here is {}", t.ty),
        );
        if arg_span != call_span && arg_span.file == call_span.file && (arg_span.end <= call_span.start || arg_span.start >= call_span.end)
        {
            d = d.with_secondary(arg_span, format!("this has shape {}", t.ty));
        }
        if pspan.file != call_span.file {
            d = d.with_secondary(pspan, format!("{lname} declares its input as {}", self.pattern_text(dims)));
        }
        if let Some(origin) = t.ir.and_then(|v| self.flatten_origin(v)) {
            d = d.with_note(origin);
        }
        // An image given to a layer of flat features: insert `flatten`
        // rather than shrink the layer to the image's last dim.
        if let Some((help, fix)) = self.flatten_fix(inst, dims, t, m, arg_span, call_span) {
            // The input is what changes: point at it when it is written
            // apart from the layer (`fc1(x)`).
            if arg_span.end > call_span.start {
                d.secondary.retain(|l| l.span != arg_span);
                d.secondary.insert(
                    0,
                    crate::diag::Label {
                        span: call_span,
                        message: "this layer takes flat features".into(),
                    },
                );
                d.primary.span = arg_span;
            }
            d = d.with_fix(help, fix);
            self.report(d);
            return;
        }
        // Suggest the argument that would fit, when it was a literal.
        if let Some(name) = &m.name {
            if let Some(&arg) = inst.arg_spans.get(name) {
                if arg.file == call_span.file {
                    let lit = self.text(arg).to_string();
                    if lit.parse::<i64>().is_ok() && m.found.parse::<i64>().is_ok() {
                        let rel = (arg.start - call_span.start) as usize..(arg.end - call_span.start) as usize;
                        let mut fixed = call_text.clone();
                        fixed.replace_range(rel, &m.found);
                        d = d.with_help(format!(
                            "the input has {} where {lname} expects {}; write `{}`",
                            m.found,
                            m.expected,
                            one_line(&fixed)
                        ));
                    }
                }
            }
        }
        self.report(d);
    }

    /// A parameter is created once, when its layer is built, so every name
    /// in its shape must be a layer argument or a `let` of the layer: an
    /// unknown name is a typo (E0101, with did-you-mean) or a dim of the
    /// input such as `batch` (E0314), which a parameter cannot depend on.
    fn param_dims_known(&mut self, t: &TensorDecl, env: &Env) -> bool {
        let TypeExpr::Tensor { dims, .. } = &t.ty else { return true };
        let mut names = vec![];
        fn collect<'d>(d: &'d DimExpr, out: &mut Vec<&'d Ident>) {
            match d {
                DimExpr::Name(n) => out.push(n),
                DimExpr::Bin(_, l, r, _) => {
                    collect(l, out);
                    collect(r, out);
                }
                DimExpr::Int(..) | DimExpr::Ellipsis(_) => {}
            }
        }
        for d in dims {
            collect(d, &mut names);
        }
        for n in names {
            let bound = env.get(&n.name).cloned();
            let symbolic = matches!(bound, Some(Val::Dim(_)));
            if bound.is_some() && !symbolic {
                continue;
            }
            // Sizes are ints (`Val::Any` while the layer is checked alone).
            let sizes: Vec<String> = env
                .names()
                .into_iter()
                .filter(|k| matches!(env.get(k), Some(Val::Int(_) | Val::Any)))
                .collect();
            let typo = if symbolic || n.name.len() < 3 {
                None
            } else {
                crate::diag::suggest(&n.name, sizes.iter().map(String::as_str))
            };
            let d = match typo {
                Some(s) => Diagnostic::error(
                    "E0101",
                    format!("unknown dimension `{}` in the shape of `{}`", n.name, t.name.name),
                    n.span,
                    "not a layer argument",
                )
                .with_fix(format!("did you mean `{s}`?"), Fix::replace(n.span, s)),
                None => {
                    let mut d = Diagnostic::error(
                        "E0314",
                        format!(
                            "the shape of parameter `{}` uses `{}`, which is not known when the layer is built",
                            t.name.name, n.name
                        ),
                        n.span,
                        "a dimension of the input, not of the layer",
                    )
                    .with_note("a parameter has one shape for every batch; broadcasting repeats it over the batch");
                    if let Some(fix) = drop_dim(dims, n.span) {
                        d = d.with_fix("leave the dimension out", fix);
                    }
                    d
                }
            };
            self.report(d);
            return false;
        }
        true
    }

    /// `flatten` before a layer whose input is an image: when the input has
    /// more than [batch, features] dims and the layer's expected size is a
    /// number, the fix inserts `flatten` (and sizes the layer for the
    /// flattened input if its literal disagrees).
    fn flatten_fix(
        &mut self,
        inst: &LayerInst,
        dims: &[DimExpr],
        t: &Tensor,
        m: &Mismatch,
        arg_span: Span,
        call_span: Span,
    ) -> Option<(String, Fix)> {
        let shape = t.ty.shape.as_ref()?;
        if shape.len() < 3 || call_span.file != self.root || arg_span.file != self.root {
            return None;
        }
        // Only a layer that can take `[batch, features]` (Dense's `[..., inputs]`),
        // not one that takes images of the input's rank (Conv2d's `[n, c, h, w]`).
        let takes_flat = dims.len() <= 2 || dims.iter().any(|d| matches!(d, DimExpr::Ellipsis(_)));
        if !takes_flat {
            return None;
        }
        let features: Option<usize> = shape[1..].iter().map(|d| d.known()).product();
        let features = features?;
        let want: usize = m.expected.parse().ok()?;
        let mut edits = vec![];
        let piped = arg_span.end <= call_span.start;
        if piped {
            edits.push(Edit {
                span: Span {
                    end: call_span.start,
                    ..call_span
                },
                replacement: "flatten |> ".into(),
            });
        } else {
            edits.push(Edit {
                span: arg_span,
                replacement: format!("flatten({})", self.text(arg_span)),
            });
        }
        let mut help = format!(
            "the input is {} per sample; insert `flatten` to make it [batch, {features}]",
            crate::ir::shape_to_string(&shape[1..])
        );
        if features != want {
            let name = m.name.as_ref()?;
            let arg = *inst.arg_spans.get(name)?;
            if arg.file != self.root || self.text(arg).parse::<i64>().is_err() {
                return None;
            }
            edits.push(Edit {
                span: arg,
                replacement: features.to_string(),
            });
            help.push_str(&format!(" and give the layer {features} inputs"));
        }
        Some((
            help,
            Fix {
                title: "Insert `flatten`".into(),
                edits,
            },
        ))
    }

    /// A pattern with the layer's arguments substituted: `[..., 784]`.
    pub(super) fn pattern_text_in(&mut self, dims: &[DimExpr], env: &Env) -> String {
        let parts: Vec<String> = dims
            .iter()
            .map(|d| match d {
                DimExpr::Ellipsis(_) => "...".to_string(),
                _ => match self.eval_dim(d, env) {
                    Some(Some(x)) => x.to_string(),
                    _ => self.text(d.span()).to_string(),
                },
            })
            .collect();
        format!("[{}]", parts.join(", "))
    }

    /// Apply a model: its inputs are checked against their declared shapes,
    /// its layers are created once and shared by every application.
    pub fn apply_model(&mut self, decl: Rc<ModelDecl>, args: Vec<ArgVal>, span: Span) -> Val {
        // The same model on the same inputs is the same value: `model(x)`
        // in a loss reuses the forward pass already built for metrics.
        let key: Option<Vec<ir::Value>> = args.iter().map(|a| if let Val::Tensor(t) = &a.val { t.ir } else { None }).collect();
        let memo_key = key.map(|k| (decl.name.name.clone(), k));
        if let Some(k) = &memo_key {
            if let Some(v) = self.model_memo.get(k) {
                return v.clone();
            }
        }
        if !self.enter(super::guard::key(&decl, 0), &decl.name.name, span) {
            return Val::Error;
        }
        let out = self.apply_model_uncached(decl, args, span);
        self.leave();
        if let Some(k) = memo_key {
            self.model_memo.insert(k, out.clone());
        }
        out
    }

    pub(super) fn apply_model_uncached(&mut self, decl: Rc<ModelDecl>, args: Vec<ArgVal>, span: Span) -> Val {
        let saved_base = self.model_base;
        self.model_base = self.frames.len();
        // A model's layers are named within the model, so they get the same
        // names whichever step or function applies it first; a model other
        // than the trained one prefixes its name (`G.dense1.W`).
        let trained = self.trained_model.as_deref() == Some(decl.name.name.as_str());
        let saved_prefix = std::mem::replace(&mut self.prefix, if !trained { vec![decl.name.name.clone()] } else { vec![] });
        let saved_counts = std::mem::take(&mut self.name_counts);
        self.model_stack.push(decl.name.name.clone());
        let unbound = unbatched_input(&decl);
        let out = match self.bind(&decl.inputs, args, &decl.name.name, span, &Env::default()) {
            Some(_) if unbound.is_some() => {
                self.report(unbound.expect("checked"));
                Val::Error
            }
            Some(mut env) => {
                let out = self.eval_body(&decl.body, &mut env);
                let out = if self.check_return(decl.ret.as_ref(), &out, &decl.body, &mut env, &decl.name.name) {
                    out
                } else {
                    Val::Error
                };
                if trained && self.output_spans.is_empty() {
                    self.output_spans = self.output_size_spans(&decl, &out, &env);
                }
                if matches!(out, Val::Tensor(_)) || out.is_poison() {
                    out
                } else {
                    self.not_a_tensor_result(&decl, &out);
                    Val::Error
                }
            }
            None => Val::Error,
        };
        self.model_stack.pop();
        self.name_counts = saved_counts;
        self.prefix = saved_prefix;
        self.model_base = saved_base;
        if trained {
            if let Val::Tensor(t) = &out {
                self.model_outputs.push(t.clone());
            }
        }
        out
    }

    /// Where the model's number of outputs is written: the last dim of its
    /// declared result and the size argument of the last layer.
    fn output_size_spans(&mut self, decl: &ModelDecl, out: &Val, env: &Env) -> Vec<Span> {
        let Val::Tensor(t) = out else { return vec![] };
        let Some(Some(last)) = t.ty.shape.as_ref().map(|s| s.last().and_then(|d| d.known())) else {
            return vec![];
        };
        let mut spans = vec![];
        if let Some(TypeExpr::Tensor { dims: ds, .. }) = &decl.ret {
            if let Some(DimExpr::Int(_, s)) = ds.last() {
                spans.push(*s);
            }
        }
        if let Some(stage) = super::call::result_stage(&decl.body) {
            let stage = stage.clone();
            if let Some(s) = self.layer_literal(&stage, last as i64, env) {
                spans.push(s);
            }
        }
        spans
    }

    /// A model's body must give a tensor: `Dense(4 -> 3)` alone is a layer
    /// that was never applied to the input.
    fn not_a_tensor_result(&mut self, decl: &ModelDecl, out: &Val) {
        let Some(stage) = super::call::result_expr(&decl.body) else {
            return;
        };
        let mut d = Diagnostic::error(
            "E0305",
            format!("model `{}` must return a tensor, but its body gives {}", decl.name.name, out.kind()),
            stage.span,
            format!("this is {}", out.kind()),
        );
        if let (Val::LayerCtor(_) | Val::Layer(_) | Val::Fn(_), Some(input)) = (out, decl.inputs.first()) {
            if stage.span.file == self.root {
                let text = self.text(stage.span).to_string();
                d = d.with_fix(
                    format!("apply it to the input: `{} |> {text}`", input.name.name),
                    Fix::replace(stage.span, format!("{} |> {text}", input.name.name)),
                );
            }
        }
        if let Some(ret) = &decl.ret {
            d = d.with_secondary(ret.span(), "declared here");
        }
        self.report(d);
    }

    /// Inputs of a model as tensors of their declared types (symbolic dims
    /// stay symbols), made parameters of the function being built.
    pub fn model_inputs(&mut self, decl: &ModelDecl) -> Option<Vec<(String, ir::Type)>> {
        let mut out = vec![];
        let env = Env::default();
        for p in &decl.inputs {
            let Some(TypeExpr::Tensor { dtype, .. }) = &p.ty else {
                let d = Diagnostic::error(
                    "E0309",
                    format!("model input `{}` needs a tensor type", p.name.name),
                    p.span,
                    "no shape given",
                )
                .with_help(format!("declare its shape, e.g. `{}: [batch, 784]`", p.name.name));
                self.report(d);
                return None;
            };
            let shape = self.eval_shape(p.ty.as_ref().expect("checked"), &env)??;
            if !self.check_size(&shape, p.span, &format!("model input `{}`", p.name.name)) {
                return None;
            }
            let dtype = if dtype.as_ref().is_some_and(|d| d.name == "i32") {
                DType::I32
            } else {
                DType::F32
            };
            out.push((p.name.name.clone(), ir::Type { dtype, shape }));
        }
        Some(out)
    }
}

/// Remove the dim at `at` from a shape list `[a, b, c]` (with its comma).
fn drop_dim(dims: &[DimExpr], at: Span) -> Option<Fix> {
    let i = dims.iter().position(|d| d.span() == at)?;
    if dims.len() < 2 {
        return None;
    }
    let span = if i + 1 < dims.len() {
        Span {
            end: dims[i + 1].span().start,
            ..at
        }
    } else {
        Span {
            start: dims[i - 1].span().end,
            ..at
        }
    };
    Some(Fix {
        title: "Remove the dimension".into(),
        edits: vec![Edit {
            span,
            replacement: String::new(),
        }],
    })
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A model whose declared result starts with a dimension (`batch`) that no
/// input has: the input was declared without it (`x: [784]` for
/// `-> [batch, 10]`), and the input is what to change. Reported before the
/// body runs, whose shapes would otherwise all be one rank short.
fn unbatched_input(decl: &ModelDecl) -> Option<Diagnostic> {
    fn names(d: &DimExpr, out: &mut Vec<String>) {
        match d {
            DimExpr::Name(id) => out.push(id.name.clone()),
            DimExpr::Bin(_, a, b, _) => {
                names(a, out);
                names(b, out);
            }
            DimExpr::Int(..) | DimExpr::Ellipsis(_) => {}
        }
    }
    let Some(TypeExpr::Tensor {
        dims: ret, span: ret_span, ..
    }) = &decl.ret
    else {
        return None;
    };
    let Some(DimExpr::Name(lead)) = ret.first() else { return None };
    let mut bound = vec![];
    let mut first_input = None;
    for p in &decl.inputs {
        if let Some(TypeExpr::Tensor { dims, span, .. }) = &p.ty {
            first_input.get_or_insert((p, dims, *span));
            for d in dims {
                names(d, &mut bound);
            }
        } else {
            // An input of unstated shape may carry the dimension.
            return None;
        }
    }
    if bound.contains(&lead.name) {
        return None;
    }
    let (input, dims, span) = first_input?;
    if dims.iter().any(|d| matches!(d, DimExpr::Ellipsis(_))) {
        return None;
    }
    let open = dims.first().map_or(span.end - 1, |d| d.span().start);
    let insert = Span::new(span.file, open as usize, open as usize);
    let sep = if dims.is_empty() { "" } else { ", " };
    Some(
        Diagnostic::error(
            "E0305",
            format!(
                "the output of `{}` starts with `{}`, but no input has that dimension",
                decl.name.name, lead.name
            ),
            span,
            format!("`{}` is declared without `{}`", input.name.name, lead.name),
        )
        .with_secondary(*ret_span, "the output is declared here")
        .with_note("every sample of a batch goes through the model at once: the inputs' first dimension is the batch")
        .with_fix(
            format!("declare the batch dimension on `{}`", input.name.name),
            crate::diag::Fix {
                title: format!("Add `{}` as the first dimension of `{}`", lead.name, input.name.name),
                edits: vec![crate::diag::Edit {
                    span: insert,
                    replacement: format!("{}{sep}", lead.name),
                }],
            },
        ),
    )
}
