//! Tiles of an output plane for the im2col GEMMs (x86-64 and aarch64): a
//! tile of consecutive positions of the flattened plane, split where it
//! crosses an output row, so that each part reads one input row per tap.

/// One run of a tile: `len` positions of output row `oy` from column `ox`,
/// at offset `at` of the tile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Run {
    pub oy: usize,
    pub ox: usize,
    pub len: usize,
    pub at: usize,
}

/// Splits positions `pos..pos + len` of an output plane `out_w` wide into
/// runs along its rows (at most `N`, one per position when rows are 1
/// wide); returns how many.
pub(crate) fn tile_runs<const N: usize>(
    pos: usize,
    len: usize,
    out_w: usize,
    runs: &mut [Run; N],
) -> usize {
    let mut n = 0;
    let mut at = 0;
    while at < len && n < N && out_w > 0 {
        let p = pos + at;
        let (oy, ox) = (p / out_w, p % out_w);
        let run_len = (out_w - ox).min(len - at);
        runs[n] = Run {
            oy,
            ox,
            len: run_len,
            at,
        };
        n += 1;
        at += run_len;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_splits_where_it_crosses_a_row() {
        let mut runs = [Run::default(); 8];
        // Positions 5..13 of rows 6 wide: the end of row 0, row 1, row 2's start.
        let n = tile_runs(5, 8, 6, &mut runs);
        let want = [
            Run {
                oy: 0,
                ox: 5,
                len: 1,
                at: 0,
            },
            Run {
                oy: 1,
                ox: 0,
                len: 6,
                at: 1,
            },
            Run {
                oy: 2,
                ox: 0,
                len: 1,
                at: 7,
            },
        ];
        assert_eq!(&runs[..n], &want);
        // Rows 1 wide: a run per position, at most N.
        let mut one = [Run::default(); 4];
        assert_eq!(tile_runs(0, 4, 1, &mut one), 4);
        assert_eq!(
            one[3],
            Run {
                oy: 3,
                ox: 0,
                len: 1,
                at: 3
            }
        );
    }
}
