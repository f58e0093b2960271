#![no_std]
#![no_main]
use cortex_m_rt::entry;
use medq::kernels::{self, ConvParams};
use medq_qemu_bench::{exit, hprintln, Counter, Rng};
static mut X: [i8; 4096] = [3; 4096];
static mut W: [i8; 8192] = [5; 8192];
static mut Y: [i8; 4096] = [0; 4096];
#[entry]
fn main() -> ! {
    let cp = cortex_m::Peripherals::take().unwrap();
    let counter = Counter::start(cp.SYST);
    let p = ConvParams { in_channels: 16, in_h: 1, in_w: 70, out_channels: 32, out_h: 1, out_w: 70, kernel_h: 1, kernel_w: 5, stride_h: 1, stride_w: 1, dilation_h: 1, dilation_w: 1, pad_top: 0, pad_left: 2, groups: 1, input_zero_point: -128, output_zero_point: 0, act_min: -128, act_max: 127 };
    let b = [1i32; 32]; let m = [1 << 30; 32]; let s = [-8; 32];
    let mut rng = Rng::new(5);
    unsafe {
        let x = &mut *core::ptr::addr_of_mut!(X); let w = &mut *core::ptr::addr_of_mut!(W); let w_ = &*w; let y = &mut *core::ptr::addr_of_mut!(Y);
        if option_env!("PROF_RANDOM").is_some() { rng.fill_i8(x); rng.fill_i8(w); }
        let w_: &[i8] = &*w;
        let n = counter.instructions(1, || kernels::conv_s8(&p, &x[..16 * 70], &w[..32 * 80], &b, &m, &s, &mut y[..32 * 70]));
        hprintln!("conv: {} instructions", n);
    }
    exit(true)
}
