//! Part `pods` (to be written).

use crate::report::Report;

pub fn run(_report: &mut Report) -> anyhow::Result<()> {
    anyhow::bail!("part pods is not written yet")
}
