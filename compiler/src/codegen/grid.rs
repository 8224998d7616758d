//! Dispatch grids: workgroup counts within the per-dimension limit. Kernels linearize the
//! workgroup id as `wid.x + wid.y * GRID_X` and ignore ids past the end.

use crate::{CompileError, Limits};

/// A dispatch of `groups` workgroups laid out in at most two dimensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    /// Workgroup counts.
    pub workgroups: [u32; 3],
    /// Workgroups per row of the grid (the `GRID_X` constant).
    pub grid_x: u32,
}

impl Grid {
    /// At least `groups` workgroups: 1-D up to the limit, else 2-D.
    pub fn linear(groups: u64, limits: &Limits) -> Result<Grid, CompileError> {
        let max = limits.max_compute_workgroups_per_dimension.max(1) as u64;
        if groups <= max {
            let g = groups as u32;
            return Ok(Grid { workgroups: [g, 1, 1], grid_x: g.max(1) });
        }
        let y = groups.div_ceil(max);
        if y > max {
            return Err(CompileError::Limit {
                what: "workgroups in one dispatch".into(),
                value: groups,
                limit: max * max,
            });
        }
        // Spread evenly so the overshoot past `groups` stays below one row.
        let x = groups.div_ceil(y);
        Ok(Grid { workgroups: [x as u32, y as u32, 1], grid_x: x as u32 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_stay_within_the_limit() {
        let l = Limits::webgpu_default();
        assert_eq!(Grid::linear(10, &l).map(|g| g.workgroups).ok(), Some([10, 1, 1]));
        let g = Grid::linear(117_188, &l).ok();
        assert!(g.is_some_and(|g| g.workgroups[0] <= 65535
            && g.workgroups[1] <= 65535
            && g.workgroups[0] as u64 * g.workgroups[1] as u64 >= 117_188));
        assert!(Grid::linear(65536 * 65536, &l).is_err());
    }
}
