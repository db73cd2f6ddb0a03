//! `kernels_text`: the fused kernels in an IR-like text form.

use super::kernel::{Kernel, Node, Program, SlotKind};
use super::plan::ArenaPlan;
use std::fmt::Write;

pub fn program_text(p: &Program, plan: &ArenaPlan) -> String {
    let mut out = String::new();
    for (s, info) in p.slots.iter().enumerate() {
        let place = match info.kind {
            SlotKind::Param(i) => format!("param {i}"),
            SlotKind::Output(i) => format!("result {i}"),
            SlotKind::Alias { param } => format!("result over param {param}"),
            SlotKind::Temp => match plan.offsets[s] {
                Some(o) => format!("arena +{o}"),
                None => "unused".to_string(),
            },
        };
        let _ = writeln!(out, "slot s{s}: f32 x {} ({place})", info.len);
    }
    let _ = writeln!(out, "arena: {} floats", plan.len);
    for (i, k) in p.kernels.iter().enumerate() {
        match k {
            Kernel::Gemm(g) => {
                let _ = writeln!(
                    out,
                    "kernel k{i} gemm batch={:?} m={} n={} k={} threads={}  // {}\n    {} (rs={}, cs={}) = {} (rs={}, cs={}) @ {} (rs={}, cs={})",
                    g.batch,
                    g.m,
                    g.n,
                    g.k,
                    g.threads,
                    g.label,
                    at(g.c.slot, g.c.base),
                    g.c.rs,
                    g.c.cs,
                    at(g.a.slot, g.a.base),
                    g.a.rs,
                    g.a.cs,
                    at(g.b.slot, g.b.base),
                    g.b.rs,
                    g.b.cs
                );
            }
            Kernel::Move(m) => {
                let srcs: Vec<String> = m.srcs.iter().map(|s| format!("s{s}")).collect();
                let _ = writeln!(
                    out,
                    "kernel k{i} move  // {}\n    s{} <- {} {:?}",
                    m.label,
                    m.dst,
                    srcs.join(", "),
                    m.op
                );
            }
            Kernel::Scan(sc) => {
                let ins: Vec<String> = sc.operands.iter().map(|s| format!("s{s}")).collect();
                let outs: Vec<String> = sc.outputs.iter().map(|o| o.map_or("_".into(), |s| format!("s{s}"))).collect();
                let _ = writeln!(
                    out,
                    "kernel k{i} scan  // {}
    {} = scan {}",
                    sc.label,
                    outs.join(", "),
                    ins.join(", ")
                );
            }
            Kernel::Window(w) => {
                let aux = w.aux.map_or(String::new(), |a| format!(", s{a}"));
                let _ = writeln!(
                    out,
                    "kernel k{i} {:?} threads={}  // {}\n    s{} = s{}{aux}",
                    w.desc.op, w.desc.threads, w.label, w.dst, w.src
                );
            }
            Kernel::Loop(l) => {
                let red = match &l.reduce {
                    Some((kind, axes)) => format!(" reduce={kind:?} over={axes:?}"),
                    None => String::new(),
                };
                let par = if l.parallel { " parallel" } else { "" };
                let _ = writeln!(out, "kernel k{i} loop {:?}{red}{par}  // {}", l.dims, l.label);
                for (j, n) in l.nodes.iter().enumerate() {
                    let body = match n {
                        Node::Load(a) => format!("load {} strides={:?}", at(a.slot, a.base), a.strides),
                        Node::Const(c) => format!("const {c:?}"),
                        Node::Index(s) => format!("index strides={s:?}"),
                        Node::Random {
                            seed,
                            key,
                            strides,
                            normal,
                        } => {
                            let key = key.map(|k| format!(" n{k}")).unwrap_or_default();
                            format!(
                                "random_{}{key} seed={seed} strides={strides:?}",
                                if *normal { "normal" } else { "uniform" }
                            )
                        }
                        Node::Unary(u, x) => format!("{} n{x}", lower(u)),
                        Node::Binary(op, x, y) => format!("{} n{x}, n{y}", lower(op)),
                        Node::Compare(c, x, y) => format!("{} n{x}, n{y}", lower(c)),
                        Node::Select(c, x, y) => format!("select n{c}, n{x}, n{y}"),
                        Node::Trunc(x) => format!("trunc n{x}"),
                    };
                    let _ = writeln!(out, "    n{j} = {body}");
                }
                for (o, (src, a)) in l.outputs.iter().enumerate() {
                    let verb = if l.reduce.is_some() && o == 0 { "accumulate" } else { "store" };
                    let _ = writeln!(out, "    {verb} n{src} -> {} strides={:?}", at(a.slot, a.base), a.strides);
                }
            }
        }
    }
    out
}

/// A slot, with the element offset of a view into it (`s3+128`).
fn at(slot: usize, base: isize) -> String {
    match base {
        0 => format!("s{slot}"),
        b => format!("s{slot}{b:+}"),
    }
}

/// Op names as the IR printer spells them (`Add` -> `add`).
fn lower(x: &dyn std::fmt::Debug) -> String {
    format!("{x:?}").to_lowercase()
}
