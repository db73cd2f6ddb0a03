//! The global scope: declarations of the stdlib and of the file being
//! checked (which may shadow stdlib names).

use crate::base::{FileId, Span};
use crate::diag::{Diagnostic, Diagnostics};
use crate::syntax::ast::{FnDecl, Item, LayerDecl, ModelDecl, Module, OptimizerDecl, TrainDecl};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

#[derive(Clone, Debug)]
pub enum Global {
    Fn(Rc<FnDecl>),
    Layer(Rc<LayerDecl>),
    Model(Rc<ModelDecl>),
    Optimizer(Rc<OptimizerDecl>),
}

impl Global {
    pub fn kind(&self) -> &'static str {
        match self {
            Global::Fn(_) => "function",
            Global::Layer(_) => "layer",
            Global::Model(_) => "model",
            Global::Optimizer(_) => "optimizer",
        }
    }
}

type Scope = HashMap<String, (Global, Span)>;

#[derive(Default, Debug)]
pub struct Globals {
    /// The stdlib's declarations, shared read-only by the compilations of a
    /// thread (see [`Globals::add_stdlib`]); `map` shadows them.
    stdlib: Rc<Scope>,
    map: Scope,
    /// Declaration order of the root file, for checking every definition.
    pub root_items: Vec<String>,
    pub trains: Vec<Rc<TrainDecl>>,
    /// The elaboration budget of this compile: every elaborator checks
    /// these globals, so they also carry the one shared step counter.
    pub budget: super::guard::Budget,
}

impl Globals {
    fn entry(&self, name: &str) -> Option<&(Global, Span)> {
        self.map.get(name).or_else(|| self.stdlib.get(name))
    }
    pub fn get(&self, name: &str) -> Option<&Global> {
        self.entry(name).map(|(g, _)| g)
    }
    pub fn def_span(&self, name: &str) -> Option<Span> {
        self.entry(name).map(|(_, s)| *s)
    }
    /// Every visible name, sorted (suggestions pick among equally close
    /// names by order, so the order must not depend on hashing).
    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.iter().map(|(n, _, _)| n.clone()).collect();
        v.sort();
        v
    }
    /// Every visible declaration (the stdlib's unless shadowed), in no
    /// particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Global, Span)> {
        let shadowed = |n: &String| self.map.contains_key(n);
        self.map
            .iter()
            .chain(self.stdlib.iter().filter(move |(n, _)| !shadowed(n)))
            .map(|(n, (g, s))| (n, g, *s))
    }

    /// Add the stdlib's modules (before any other). Their declarations are
    /// the same for every compilation, so each thread builds them once and
    /// shares them (`Rc` declarations are not `Send`, hence per thread);
    /// the cache is keyed by the modules' address, which a `'static` slice
    /// never gives to other modules.
    pub fn add_stdlib(&mut self, stdlib: &'static [(FileId, Module)], diags: &mut Diagnostics) {
        type Shared = Option<(usize, Rc<Scope>, Vec<Diagnostic>)>;
        thread_local! {
            static SHARED: RefCell<Shared> = const { RefCell::new(None) };
        }
        assert!(
            self.map.is_empty() && self.stdlib.is_empty(),
            "internal error: the stdlib is added first"
        );
        let key = stdlib.as_ptr() as usize;
        let (scope, found) = SHARED.with(|cell| {
            let mut cell = cell.borrow_mut();
            match &*cell {
                Some((k, scope, found)) if *k == key => (scope.clone(), found.clone()),
                _ => {
                    let mut built = Globals::default();
                    let mut found = Diagnostics::default();
                    for (_, m) in stdlib {
                        built.add_module(m, false, &mut found);
                    }
                    let scope = Rc::new(built.map);
                    *cell = Some((key, scope.clone(), found.items.clone()));
                    (scope, found.items)
                }
            }
        });
        self.stdlib = scope;
        for d in found {
            diags.push(d);
        }
    }

    /// Add a module's declarations; `root` marks the file being checked.
    /// Duplicates within one module are errors; across modules, the later
    /// module shadows the earlier.
    pub fn add_module(&mut self, m: &Module, root: bool, diags: &mut Diagnostics) {
        let mut seen: HashMap<String, Span> = HashMap::new();
        for item in &m.items {
            let (name, g) = match item {
                Item::Use(_) => continue,
                Item::Train(t) => {
                    if root {
                        self.trains.push(Rc::new(t.clone()));
                    }
                    continue;
                }
                Item::Fn(d) => (&d.name, Global::Fn(Rc::new(d.clone()))),
                Item::Layer(d) => (&d.name, Global::Layer(Rc::new(d.clone()))),
                Item::Model(d) => (&d.name, Global::Model(Rc::new(d.clone()))),
                Item::Optimizer(d) => (&d.name, Global::Optimizer(Rc::new(d.clone()))),
            };
            if let Some(prev) = seen.get(&name.name) {
                let d = Diagnostic::error(
                    "E0102",
                    format!("`{}` is defined twice", name.name),
                    name.span,
                    "defined again here",
                )
                .with_secondary(*prev, "first defined here");
                diags.push(d);
                continue;
            }
            seen.insert(name.name.clone(), name.span);
            if root {
                self.root_items.push(name.name.clone());
            }
            self.map.insert(name.name.clone(), (g, name.span));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared stdlib scope is the scope `add_module` builds, entry
    /// for entry, the first time on a thread and every time after.
    #[test]
    fn shared_stdlib_scope_is_the_one_add_module_builds() {
        let parsed: Vec<(FileId, Module)> = super::super::STDLIB
            .iter()
            .enumerate()
            .map(|(i, (_, text))| (FileId(i as u32), crate::syntax::parse(FileId(i as u32), text).0))
            .collect();
        let stdlib: &'static [(FileId, Module)] = Box::leak(parsed.into_boxed_slice());
        let mut plain = Globals::default();
        let mut plain_diags = Diagnostics::default();
        for (_, m) in stdlib {
            plain.add_module(m, false, &mut plain_diags);
        }
        let describe = |g: &Globals| -> Vec<String> {
            let mut v: Vec<String> = g.iter().map(|(n, g, s)| format!("{n} {} {s} {g:?}", g.kind())).collect();
            v.sort();
            v
        };
        let (want, want_names, want_diags) = (describe(&plain), plain.names(), plain_diags.items.len());
        assert!(want_names.len() > 50);
        for _ in 0..2 {
            std::thread::scope(|t| {
                t.spawn(|| {
                    for _ in 0..2 {
                        let mut shared = Globals::default();
                        let mut diags = Diagnostics::default();
                        shared.add_stdlib(stdlib, &mut diags);
                        assert_eq!(describe(&shared), want);
                        assert_eq!(shared.names(), want_names);
                        assert_eq!(diags.items.len(), want_diags);
                    }
                });
            });
        }
    }
}
