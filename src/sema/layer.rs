//! Layers and models in the elaborator: construction (parameters get
//! names like `dense1.W`), application with input checks that suggest a
//! fix, and models that share their layers across applications.

use super::elab::{ArgVal, Elab, Mismatch, ParamInfo};
use super::value::{Callable, Env, LayerInst, LayerRecord, Tensor, TensorTy, Val};
use crate::base::Span;
use crate::diag::Diagnostic;
use crate::ir::{self, DType};
use crate::syntax::ast::*;
use std::collections::HashMap;
use std::rc::Rc;

impl Elab<'_> {
    // ---- layers and models ------------------------------------------------

    pub(super) fn fresh_layer_name(&mut self, decl: &LayerDecl) -> String {
        if let Some(n) = self.pending_name.take() {
            return n;
        }
        let base = decl.name.name.to_lowercase();
        let c = self.name_counts.entry(base.clone()).or_insert(0);
        *c += 1;
        format!("{base}{c}")
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
        let key: Vec<Span> = self.frames[self.model_base.min(self.frames.len())..].to_vec();
        if let Some(inst) = self.layer_cache.get(&key) {
            self.pending_name = None;
            return Val::Layer(inst.clone());
        }
        let local = self.fresh_layer_name(&decl);
        let name = if self.prefix.is_empty() {
            local.clone()
        } else {
            format!("{}.{local}", self.prefix.join("."))
        };
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
        for m in &decl.members {
            match m {
                LayerMember::Param(t) | LayerMember::Buffer(t) => {
                    let trainable = matches!(m, LayerMember::Param(_));
                    let v = self.create_param(&name, t, &env, trainable);
                    if let Val::Tensor(tv) = &v {
                        if let Some(shape) = &tv.ty.shape {
                            created.push((t.name.name.clone(), ir::Type::f32(shape.clone())));
                        }
                    }
                    env.vars.insert(t.name.name.clone(), v);
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
        });
        self.layers.push(LayerRecord {
            name,
            span,
            params: created,
        });
        self.layer_cache.insert(key, inst.clone());
        self.instances.push(inst.clone());
        Val::Layer(inst)
    }

    pub(super) fn create_param(&mut self, layer: &str, t: &TensorDecl, env: &Env, trainable: bool) -> Val {
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
            span: t.span,
        });
        self.tensor(TensorTy::f32(shape), Some(v))
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
                };
                if let Err(m) = self.match_pattern(dims, &t.ty, &mut probe) {
                    self.layer_input_error(inst, &decl.name.name, dims, *pspan, t, &m, a.span, span);
                    return Val::Error;
                }
            }
        }
        self.applying.push(super::guard::key(&inst.decl, 0));
        let out = self.call_fn(&decl, env, args, span);
        self.applying.pop();
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
        let saved_prefix = std::mem::take(&mut self.prefix);
        let out = match self.bind(&decl.inputs, args, &decl.name.name, span, &Env::default()) {
            Some(mut env) => {
                let out = self.eval_body(&decl.body, &mut env);
                self.check_return(decl.ret.as_ref(), &out, &decl.body, &mut env, &decl.name.name);
                out
            }
            None => Val::Error,
        };
        self.prefix = saved_prefix;
        self.model_base = saved_base;
        if self.trained_model.as_deref() == Some(decl.name.name.as_str()) {
            if let Val::Tensor(t) = &out {
                self.model_outputs.push(t.clone());
            }
        }
        out
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

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
