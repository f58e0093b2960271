//! The sliding window shared by Conv and the pools: eight parameter words
//! (stride H/W, dilation H/W, pads top/left/bottom/right) in the same order
//! in `params::conv` and `params::pool`, checked once for both.

use super::Ctx;
use crate::error::Error;
use crate::format::layout::params;
use crate::kernels::conv_out_len;

/// A window's placement and its output size (floor mode).
pub(super) struct Window {
    pub stride_h: usize,
    pub stride_w: usize,
    pub dilation_h: usize,
    pub dilation_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub out_h: usize,
    pub out_w: usize,
}

// `Ctx::window` reads both layouts by offset from STRIDE_H.
const _: () = {
    use params::{conv as c, pool as p};
    assert!(c::STRIDE_W == c::STRIDE_H + 1 && p::STRIDE_W == p::STRIDE_H + 1);
    assert!(c::DILATION_H == c::STRIDE_H + 2 && p::DILATION_H == p::STRIDE_H + 2);
    assert!(c::DILATION_W == c::STRIDE_H + 3 && p::DILATION_W == p::STRIDE_H + 3);
    assert!(c::PAD_TOP == c::STRIDE_H + 4 && p::PAD_TOP == p::STRIDE_H + 4);
    assert!(c::PAD_LEFT == c::STRIDE_H + 5 && p::PAD_LEFT == p::STRIDE_H + 5);
    assert!(c::PAD_BOTTOM == c::STRIDE_H + 6 && p::PAD_BOTTOM == p::STRIDE_H + 6);
    assert!(c::PAD_RIGHT == c::STRIDE_H + 7 && p::PAD_RIGHT == p::STRIDE_H + 7);
};

impl Ctx<'_, '_> {
    /// Reads the eight window words from `first`, checks them against the
    /// kernel and input size, and sizes the output (floor mode).
    pub(super) fn window(
        &self,
        first: usize,
        (kernel_h, kernel_w): (usize, usize),
        (in_h, in_w): (usize, usize),
        is_2d: bool,
    ) -> Result<Window, Error> {
        let stride = why!("stride must be at least 1");
        let dilation = why!("dilation must be at least 1");
        let pad = why!("negative pad");
        let stride_h = self.size(first, 1, stride)?;
        let stride_w = self.size(first + 1, 1, stride)?;
        let dilation_h = self.size(first + 2, 1, dilation)?;
        let dilation_w = self.size(first + 3, 1, dilation)?;
        let pad_top = self.size(first + 4, 0, pad)?;
        let pad_left = self.size(first + 5, 0, pad)?;
        let pad_bottom = self.size(first + 6, 0, pad)?;
        let pad_right = self.size(first + 7, 0, pad)?;
        if !is_2d {
            self.ensure(
                kernel_h == 1
                    && stride_h == 1
                    && dilation_h == 1
                    && pad_top == 0
                    && pad_bottom == 0,
                why!("1-D windows need kernel, stride and dilation 1 and no pads along H"),
            )?;
        }
        let out_h = conv_out_len(in_h, kernel_h, stride_h, dilation_h, pad_top, pad_bottom);
        let out_w = conv_out_len(in_w, kernel_w, stride_w, dilation_w, pad_left, pad_right);
        let (Some(out_h), Some(out_w)) = (out_h, out_w) else {
            return Err(self.bad(why!("window larger than the padded input")));
        };
        Ok(Window {
            stride_h,
            stride_w,
            dilation_h,
            dilation_w,
            pad_top,
            pad_left,
            out_h,
            out_w,
        })
    }
}
