//! TEMPORARY stub until the autodiff branch lands.
use crate::ir::{Builder, Value};
pub fn grad(_b: &mut Builder, _output: Value, _wrt: &[Value]) -> Vec<Value> {
    unimplemented!()
}
