//! Part `pulls` (to be written).

use crate::report::Report;

pub fn run(_report: &mut Report) -> anyhow::Result<()> {
    anyhow::bail!("part pulls is not written yet")
}
