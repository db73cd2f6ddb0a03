//! Termination of elaboration: recursion detection and a budget.
//!
//! Calls are inlined and the language has no compile-time conditional, so
//! a definition that reaches itself never finishes — and a call tree that
//! doubles at each level (`fn f(x) = f(x) + f(x)`) is exponential long
//! before any depth limit. Two guards keep `nnc check` and the language
//! server responsive on every input:
//!
//! - **Recursion**: a declaration is *active* while its body (or its
//!   default arguments) is being inlined. Re-entering an active top-level
//!   function, layer constructor or model is recursion, however many
//!   other calls lie between. Methods (`forward`) are keyed by their layer
//!   instance too, so `Residual(Residual(Dense(...)))` — the same method of
//!   two different instances — is not recursion; a method can only recurse
//!   through itself (same instance) or through a constructor (caught).
//! - **Budget**: a count of evaluation steps and of IR instructions,
//!   shared by every elaborator of one compile. Exceeding it is one E0502
//!   diagnostic; afterwards every evaluation returns `Val::Error` at once,
//!   so the compile ends promptly. The limits are far above any real
//!   model (a 10,000-layer MLP takes about a tenth of them).

use super::elab::Elab;
use crate::base::Span;
use crate::diag::Diagnostic;
use crate::ir::Dim;
use std::cell::Cell;

/// Evaluation steps (expressions evaluated) per compile.
pub const MAX_STEPS: u64 = 4_000_000;
/// IR instructions in one elaborated function.
pub const MAX_INSTS: usize = 1_000_000;
/// Values in one compile-time list, counted through nested lists.
pub const MAX_LIST_VALUES: usize = 1_000_000;
/// Characters in one symbolic dimension (`(n*(n*n))`).
pub const MAX_SYM_DIM: usize = 200;

/// Elements of one tensor (symbolic dims count as 1): 2^31 keeps every
/// byte offset of an f32 tensor, and every index the compiled loops
/// compute, far inside 64 bits, and is 8 GiB — past any CPU model here.
pub const MAX_ELEMENTS: u64 = 1 << 31;

/// Elements of a shape with symbolic dims counted as 1; `None` when the
/// count does not even fit in 64 bits.
pub fn elements(shape: &[Dim]) -> Option<u64> {
    shape.iter().try_fold(1u64, |n, d| n.checked_mul(d.known().map_or(1, |k| k as u64)))
}

/// The shared step counter of one compile.
#[derive(Debug, Default)]
pub struct Budget {
    steps: Cell<u64>,
    exhausted: Cell<bool>,
}

impl Budget {
    pub fn exhausted(&self) -> bool {
        self.exhausted.get()
    }
    /// Steps spent so far.
    pub fn steps(&self) -> u64 {
        self.steps.get()
    }
}

/// What identifies a declaration being inlined: the address of its syntax
/// node and, for methods, of the layer instance's scope (0 otherwise).
pub(super) type DefKey = (usize, usize);

pub(super) fn key<T>(decl: &std::rc::Rc<T>, instance: usize) -> DefKey {
    (std::rc::Rc::as_ptr(decl) as *const () as usize, instance)
}

impl Elab<'_> {
    /// Count one evaluation step; false when the budget is spent (the
    /// caller returns `Val::Error`). Reports E0502 once, at `span`.
    pub(super) fn tick(&mut self, span: Span) -> bool {
        let budget = &self.globals.budget;
        if budget.exhausted.get() {
            return false;
        }
        let steps = budget.steps.get() + 1;
        budget.steps.set(steps);
        let insts = self.b.func().insts.len();
        if steps <= MAX_STEPS && insts <= MAX_INSTS {
            return true;
        }
        budget.exhausted.set(true);
        let what = if steps > MAX_STEPS {
            format!("more than {MAX_STEPS} evaluation steps")
        } else {
            format!("more than {MAX_INSTS} IR instructions")
        };
        let d = Diagnostic::error(
            "E0502",
            format!("this program is too large to check: it takes {what}"),
            span,
            "checking stopped here",
        )
        .with_help("calls are inlined: a function that calls another twice, nested many levels deep, grows exponentially");
        self.report(d);
        false
    }

    /// Charge `n` steps for work done outside `eval` (building a list).
    pub(super) fn charge(&mut self, n: usize, span: Span) -> bool {
        let budget = &self.globals.budget;
        budget.steps.set(budget.steps.get().saturating_add(n as u64));
        self.tick(span)
    }

    /// Mark `key` active for the inlining of `name` at `span`; on
    /// recursion, report E0115 naming the cycle and return false (the
    /// caller returns `Val::Error` without entering).
    pub(super) fn enter(&mut self, key: DefKey, name: &str, span: Span) -> bool {
        if let Some(i) = self.active.iter().position(|(k, _)| *k == key) {
            // One report per definition: its other recursive calls say
            // nothing new.
            if self.recursive.contains(&key) {
                return false;
            }
            self.recursive.push(key);
            let mut cycle: Vec<&str> = self.active[i..].iter().map(|(_, n)| n.as_str()).collect();
            cycle.push(name);
            let how = if cycle.len() == 2 {
                format!("`{name}` calls itself")
            } else {
                format!("`{name}` calls itself through {}", cycle.join(" → "))
            };
            let d = Diagnostic::error("E0115", format!("recursive definition: {how}"), span, "this call recurses")
                .with_help("calls are inlined when a model is compiled, so a definition cannot reach itself; write the repetition out");
            self.report(d);
            return false;
        }
        self.active.push((key, name.to_string()));
        true
    }

    pub(super) fn leave(&mut self) {
        self.active.pop();
    }

    /// Building layer `key` inside the forward function of an instance of
    /// the same layer recurses: that instance builds another, whose
    /// forward builds another (nesting instances made beforehand, as in
    /// `Residual(Residual(...))`, does not).
    pub(super) fn builds_itself(&mut self, key: DefKey, name: &str, span: Span) -> bool {
        if !self.applying.contains(&key) {
            return false;
        }
        if !self.recursive.contains(&key) {
            self.recursive.push(key);
            let d = Diagnostic::error(
                "E0115",
                format!("recursive definition: `{name}` builds itself in its own forward function"),
                span,
                "this layer is built again each time it is applied",
            )
            .with_help("build the inner layers outside, and pass them in as arguments");
            self.report(d);
        }
        true
    }

    /// Refuse a tensor whose shape is too large to allocate (E0503): the
    /// sizes are known here, long before anything would be allocated.
    pub(super) fn check_size(&mut self, shape: &[Dim], span: Span, what: &str) -> bool {
        let n = elements(shape);
        if n.is_some_and(|n| n <= MAX_ELEMENTS) {
            return true;
        }
        let count = match n {
            Some(n) => format!("{n} elements"),
            None => "more than 2^64 elements".to_string(),
        };
        let d = Diagnostic::error(
            "E0503",
            format!("{what} {} is too large: {count}", crate::ir::shape_to_string(shape)),
            span,
            format!("has {count}"),
        )
        .with_note(format!("a tensor may have at most {MAX_ELEMENTS} elements (8 GiB of f32)"));
        self.report(d);
        false
    }
}
