//! Part `faults` (to be written).

use crate::report::Report;

pub fn run(_report: &mut Report) -> anyhow::Result<()> {
    anyhow::bail!("part faults is not written yet")
}
