//! The global scope: declarations of the stdlib and of the file being
//! checked (which may shadow stdlib names).

use crate::base::Span;
use crate::diag::{Diagnostic, Diagnostics};
use crate::syntax::ast::{FnDecl, Item, LayerDecl, ModelDecl, Module, OptimizerDecl, TrainDecl};
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

#[derive(Default, Debug)]
pub struct Globals {
    map: HashMap<String, (Global, Span)>,
    /// Declaration order of the root file, for checking every definition.
    pub root_items: Vec<String>,
    pub trains: Vec<Rc<TrainDecl>>,
    /// The elaboration budget of this compile: every elaborator checks
    /// these globals, so they also carry the one shared step counter.
    pub budget: super::guard::Budget,
}

impl Globals {
    pub fn get(&self, name: &str) -> Option<&Global> {
        self.map.get(name).map(|(g, _)| g)
    }
    pub fn def_span(&self, name: &str) -> Option<Span> {
        self.map.get(name).map(|(_, s)| *s)
    }
    pub fn names(&self) -> Vec<String> {
        self.map.keys().cloned().collect()
    }
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Global, Span)> {
        self.map.iter().map(|(n, (g, s))| (n, g, *s))
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
