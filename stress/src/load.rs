//! Part `load` (to be written).

use crate::report::Report;

pub fn run(_report: &mut Report) -> anyhow::Result<()> {
    anyhow::bail!("part load is not written yet")
}
