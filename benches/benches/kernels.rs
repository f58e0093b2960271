//! medq's x86-64 AVX2 kernels against the reference kernels on the zoo's
//! layer shapes, one thread, batch 1. Run with
//! `cargo bench -p medq-benches --bench kernels`.
//!
//! First a table of G MAC/s (convolutions, fully connected) or G elem/s
//! (pools: input elements) per shape, reference vs AVX2, from a plain timing
//! loop (best of several batches); then criterion's own measurements, with
//! the same throughput units, for the record. On a CPU without AVX2 the
//! "AVX2" column is the reference kernel again (the kernels fall back).

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::hint::black_box;
    use std::time::{Duration, Instant};

    use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
    use medq::kernels::x86_64::*;
    use medq::kernels::*;

    /// One benchmarked call: a name, its work (MACs or elements), and the two
    /// kernels on prepared operands.
    struct Job {
        name: String,
        unit: &'static str,
        work: u64,
        reference: Box<dyn FnMut()>,
        avx2: Box<dyn FnMut()>,
        /// A convolution's geometry (for its int16 twin).
        params: Option<ConvParams>,
    }

    /// A small deterministic byte generator.
    struct Lcg(u64);

    impl Lcg {
        fn byte(&mut self) -> i8 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 56) as u8 as i8
        }

        fn bytes(&mut self, n: usize) -> Vec<i8> {
            (0..n).map(|_| self.byte()).collect()
        }
    }

    /// Operands of a convolution or fully-connected call.
    #[derive(Clone)]
    struct Operands {
        x: Vec<i8>,
        w: Vec<i8>,
        bias: Vec<i32>,
        mult: Vec<i32>,
        shift: Vec<i8>,
    }

    fn operands(rng: &mut Lcg, n_x: usize, n_w: usize, channels: usize) -> Operands {
        Operands {
            x: rng.bytes(n_x),
            w: rng.bytes(n_w),
            bias: (0..channels).map(|i| (i as i32 - 8) * 517).collect(),
            mult: (0..channels)
                .map(|i| (1 << 30) + (i as i32) * 7919)
                .collect(),
            shift: vec![-20; channels],
        }
    }

    type ConvKernel = fn(&ConvParams, &[i8], &[i8], &[i32], &[i32], &[i8], &mut [i8]);

    fn conv_call(p: ConvParams, o: Operands, f: ConvKernel) -> Box<dyn FnMut()> {
        let mut y = vec![0i8; p.out_channels * p.out_h * p.out_w];
        Box::new(move || {
            f(&p, &o.x, &o.w, &o.bias, &o.mult, &o.shift, &mut y);
            black_box(&mut y);
        })
    }

    /// A convolution job: `[cin, h, w] → [cout, ..]` with a `kh × kw` kernel,
    /// stride, symmetric padding and groups.
    #[allow(clippy::too_many_arguments)]
    fn conv_job(
        rng: &mut Lcg,
        label: &str,
        (cin, h, w): (usize, usize, usize),
        cout: usize,
        (kh, kw): (usize, usize),
        stride: usize,
        pad: usize,
        groups: usize,
    ) -> Job {
        let pad_h = if kh == 1 { 0 } else { pad };
        let out_h = conv_out_len(h, kh, if kh == 1 { 1 } else { stride }, 1, pad_h, pad_h).unwrap();
        let out_w = conv_out_len(w, kw, stride, 1, pad, pad).unwrap();
        let p = ConvParams {
            in_channels: cin,
            in_h: h,
            in_w: w,
            out_channels: cout,
            out_h,
            out_w,
            kernel_h: kh,
            kernel_w: kw,
            stride_h: if kh == 1 { 1 } else { stride },
            stride_w: stride,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: pad_h,
            pad_left: pad,
            groups,
            input_zero_point: -5,
            output_zero_point: 3,
            act_min: -128,
            act_max: 127,
        };
        let k = cin / groups * kh * kw;
        let o = operands(rng, cin * h * w, cout * k, cout);
        let depthwise = groups == cin && groups > 1;
        let avx2: ConvKernel = if depthwise {
            depthwise_conv_s8_avx2
        } else {
            conv_s8_avx2
        };
        let taken = if depthwise {
            depthwise_conv_avx2_takes(&p)
        } else {
            conv_avx2_takes(&p)
        };
        if let Err(why) = taken {
            eprintln!("{label}: the AVX2 kernel refuses it ({why})");
        }
        Job {
            name: format!("conv {label}"),
            unit: "G MAC/s",
            work: (cout * out_h * out_w * k) as u64,
            reference: conv_call(p, o.clone(), conv_s8),
            avx2: conv_call(p, o, avx2),
            params: Some(p),
        }
    }

    /// An int16-activation kernel with weights `W` (the reference signature).
    type ConvS16Kernel<W> = fn(&ConvParams, &[i16], &[W], &[i32], &[i32], &[i8], &mut [i16]);

    /// The same convolution with int16 activations (TFLite's 16x8):
    /// `conv_s16` against `conv_s16_avx2`, the kernels `--precision auto`
    /// runs on every layer it raises.
    fn conv_s16_job(rng: &mut Lcg, label: &str, job: &Job, p: ConvParams) -> Job {
        let k = p.in_channels / p.groups * p.kernel_h * p.kernel_w;
        let w = rng.bytes(p.out_channels * k);
        let kernels = (
            conv_s16 as ConvS16Kernel<i8>,
            conv_s16_avx2 as ConvS16Kernel<i8>,
        );
        int16_conv_job(rng, format!("conv16 {label}"), job, p, w, kernels)
    }

    /// The same convolution with int16 activations and int16 weights
    /// (16x16): `conv_s16_w16` against `conv_s16_w16_avx2` (two passes of
    /// the int16 GEMM, one per byte of the weights), what `--precision auto`
    /// runs on a layer whose int8 weights limit the model.
    fn conv_w16_job(rng: &mut Lcg, label: &str, job: &Job, p: ConvParams) -> Job {
        let k = p.in_channels / p.groups * p.kernel_h * p.kernel_w;
        let w: Vec<i16> = (0..p.out_channels * k)
            .map(|_| i16::from_le_bytes([rng.byte() as u8, rng.byte() as u8]) / 64)
            .collect();
        let kernels = (
            conv_s16_w16 as ConvS16Kernel<i16>,
            conv_s16_w16_avx2 as ConvS16Kernel<i16>,
        );
        int16_conv_job(rng, format!("conv16x16 {label}"), job, p, w, kernels)
    }

    /// `job`'s convolution with an int16 input and output and weights `w`,
    /// on the reference and the AVX2 kernel.
    fn int16_conv_job<W: Clone + 'static>(
        rng: &mut Lcg,
        name: String,
        job: &Job,
        p: ConvParams,
        w: Vec<W>,
        (reference, avx2): (ConvS16Kernel<W>, ConvS16Kernel<W>),
    ) -> Job {
        let o = operands(rng, 0, 0, p.out_channels);
        let x: Vec<i16> = (0..p.in_channels * p.in_h * p.in_w)
            .map(|_| i16::from(rng.byte()) * 97)
            .collect();
        let p = ConvParams {
            input_zero_point: 0,
            output_zero_point: 0,
            act_min: -32768,
            act_max: 32767,
            ..p
        };
        if let Err(why) = conv_s16_avx2_takes(&p) {
            eprintln!("{name}: the int16 AVX2 kernel refuses it ({why})");
        }
        let call = |f: ConvS16Kernel<W>| {
            let (o, w, x) = (o.clone(), w.clone(), x.clone());
            let mut y = vec![0i16; p.out_channels * p.out_h * p.out_w];
            Box::new(move || {
                f(&p, &x, &w, &o.bias, &o.mult, &o.shift, &mut y);
                black_box(&mut y);
            }) as Box<dyn FnMut()>
        };
        Job {
            name,
            unit: "G MAC/s",
            work: job.work,
            reference: call(reference),
            avx2: call(avx2),
            params: Some(p),
        }
    }

    fn fc_job(rng: &mut Lcg, k: usize, n: usize) -> Job {
        let p = FullyConnectedParams {
            rows: 1,
            in_features: k,
            out_features: n,
            input_zero_point: 7,
            output_zero_point: -2,
            act_min: -128,
            act_max: 127,
        };
        let o = operands(rng, k, n * k, n);
        let call = |f: medq::kernels::select::FullyConnectedFn| {
            let o = o.clone();
            let mut y = vec![0i8; n];
            Box::new(move || {
                f(&p, &o.x, &o.w, &o.bias, &o.mult, &o.shift, &mut y);
                black_box(&mut y);
            }) as Box<dyn FnMut()>
        };
        Job {
            name: format!("fc {k}->{n}"),
            unit: "G MAC/s",
            work: (k * n) as u64,
            reference: call(fully_connected_s8),
            avx2: call(fully_connected_s8_avx2),
            params: None,
        }
    }

    /// The same fully connected layer with int16 activations.
    fn fc_s16_job(rng: &mut Lcg, k: usize, n: usize) -> Job {
        let p = FullyConnectedParams {
            rows: 1,
            in_features: k,
            out_features: n,
            input_zero_point: 0,
            output_zero_point: 0,
            act_min: -32768,
            act_max: 32767,
        };
        let o = operands(rng, 0, n * k, n);
        let x: Vec<i16> = (0..k).map(|_| i16::from(rng.byte()) * 97).collect();
        let call = |f: medq::kernels::select::FullyConnectedS16Fn<i16>| {
            let (o, x) = (o.clone(), x.clone());
            let mut y = vec![0i16; n];
            Box::new(move || {
                f(&p, &x, &o.w, &o.bias, &o.mult, &o.shift, &mut y);
                black_box(&mut y);
            }) as Box<dyn FnMut()>
        };
        Job {
            name: format!("fc16 {k}->{n}"),
            unit: "G MAC/s",
            work: (k * n) as u64,
            reference: call(fully_connected_s16),
            avx2: call(fully_connected_s16_avx2),
            params: None,
        }
    }

    fn max_pool_job(rng: &mut Lcg, c: usize, l: usize, k: usize) -> Job {
        let p = PoolParams {
            channels: c,
            in_h: 1,
            in_w: l,
            out_h: 1,
            out_w: l / k,
            kernel_h: 1,
            kernel_w: k,
            stride_h: 1,
            stride_w: k,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            count_include_pad: false,
            zero_point: 0,
        };
        let x = rng.bytes(c * l);
        let call = |f: fn(&PoolParams, &[i8], &mut [i8])| {
            let x = x.clone();
            let mut y = vec![0i8; c * (l / k)];
            Box::new(move || {
                f(&p, &x, &mut y);
                black_box(&mut y);
            }) as Box<dyn FnMut()>
        };
        Job {
            name: format!("maxpool {c}x{l} k{k} s{k}"),
            unit: "G elem/s",
            work: (c * l) as u64,
            reference: call(max_pool_s8),
            avx2: call(max_pool_s8_avx2),
            params: None,
        }
    }

    /// Every shape: the zoo's 1-D convolutions, fully-connected layers and
    /// pools, and the held-out users' 2-D shapes.
    fn jobs() -> Vec<Job> {
        let mut rng = Lcg(2024);
        let r = &mut rng;
        // (Cin, L, k, stride, pad, Cout)
        let one_d = [
            (1, 1639, 9, 2, 4, 16),
            (16, 205, 7, 1, 3, 32),
            (32, 51, 5, 1, 0, 32),
            (32, 25, 3, 1, 0, 16),
            (1, 140, 7, 1, 0, 16),
            (16, 70, 5, 1, 0, 32),
            (32, 35, 3, 1, 0, 32),
            (1, 750, 9, 2, 0, 24),
            (24, 187, 7, 1, 0, 48),
            (48, 93, 5, 1, 0, 64),
            (64, 46, 3, 1, 0, 96),
            (1, 99, 5, 1, 0, 16),
            (16, 49, 5, 1, 0, 32),
            (32, 24, 3, 1, 0, 16),
            (1, 96, 7, 1, 0, 8),
            (8, 48, 5, 1, 0, 16),
            (16, 24, 3, 1, 0, 8),
        ];
        let mut jobs: Vec<Job> = one_d
            .iter()
            .map(|&(cin, l, k, s, pad, cout)| {
                let label = format!("{cin}x{l} k{k} s{s} p{pad} ->{cout}");
                conv_job(r, &label, (cin, 1, l), cout, (1, k), s, pad, 1)
            })
            .collect();
        jobs.push(conv_job(
            r,
            "16x32x32 3x3 p1 ->16",
            (16, 32, 32),
            16,
            (3, 3),
            1,
            1,
            1,
        ));
        jobs.push(conv_job(
            r,
            "64x25x5 1x1 ->64",
            (64, 25, 5),
            64,
            (1, 1),
            1,
            0,
            1,
        ));
        // Past the direct path's 640 channel-pair taps: the im2col GEMM.
        jobs.push(conv_job(
            r,
            "288x12x12 3x3 p1 ->64",
            (288, 12, 12),
            64,
            (3, 3),
            1,
            1,
            1,
        ));
        // A 12-lead ECG ResNet's stride-2 block (k9 over 1000 samples).
        jobs.push(conv_job(
            r,
            "64x1000 k9 s2 p4 ->96",
            (64, 1, 1000),
            96,
            (1, 9),
            2,
            4,
            1,
        ));
        jobs.push(conv_job(
            r,
            "dw 64x25x5 3x3 p1",
            (64, 25, 5),
            64,
            (3, 3),
            1,
            1,
            64,
        ));
        // Every convolution again with int16 activations.
        let twins: Vec<Job> = jobs
            .iter()
            .filter_map(|job| {
                let p = job.params?;
                let label = job.name.trim_start_matches("conv ");
                Some(conv_s16_job(r, label, job, p))
            })
            .collect();
        // And with int16 weights too.
        let twins_w16: Vec<Job> = jobs
            .iter()
            .filter_map(|job| {
                let p = job.params?;
                let label = job.name.trim_start_matches("conv ");
                Some(conv_w16_job(r, label, job, p))
            })
            .collect();
        jobs.extend(twins);
        jobs.extend(twins_w16);
        for (k, n) in [
            (30, 2),
            (32, 5),
            (96, 10),
            (192, 42),
            (384, 4),
            (400, 42),
            (640, 128),
        ] {
            jobs.push(fc_job(r, k, n));
            jobs.push(fc_s16_job(r, k, n));
        }
        jobs.push(max_pool_job(r, 32, 51, 2));
        jobs.push(max_pool_job(r, 16, 820, 4));
        jobs.push(max_pool_job(r, 48, 181, 2));
        jobs
    }

    /// Seconds per call: the best average over 200 short batches (about
    /// 0.3 ms each, shorter than a scheduler time slice, so that some of
    /// them run undisturbed on a busy machine).
    fn seconds_per_call(f: &mut dyn FnMut()) -> f64 {
        let start = Instant::now();
        let mut calls = 0u64;
        while start.elapsed() < Duration::from_micros(300) {
            f();
            calls += 1;
        }
        let mut best = f64::INFINITY;
        for _ in 0..200 {
            let t = Instant::now();
            for _ in 0..calls {
                f();
            }
            best = best.min(t.elapsed().as_secs_f64() / calls as f64);
        }
        best
    }

    fn summary(jobs: &mut [Job]) {
        println!("AVX2 available: {}", avx2_available());
        println!(
            "{:<34} {:>9} {:>10} {:>10} {:>10} {:>10} {:>8}",
            "shape", "work", "ref µs", "avx2 µs", "ref", "avx2", "speedup"
        );
        // (reference s, AVX2 s, MACs) of the int8 and the int16 convolutions.
        let mut totals = [(0.0, 0.0, 0u64); 2];
        for job in jobs.iter_mut() {
            let t_ref = seconds_per_call(&mut job.reference);
            let t_avx2 = seconds_per_call(&mut job.avx2);
            let rate = |t: f64| job.work as f64 / t / 1e9;
            println!(
                "{:<34} {:>9} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>7.1}x   ({})",
                job.name,
                job.work,
                t_ref * 1e6,
                t_avx2 * 1e6,
                rate(t_ref),
                rate(t_avx2),
                t_ref / t_avx2,
                job.unit
            );
            let kind = match job.name.split(' ').next() {
                Some("conv") => totals.get_mut(0),
                Some("conv16") => totals.get_mut(1),
                _ => None,
            };
            if let Some(t) = kind {
                t.0 += t_ref;
                t.1 += t_avx2;
                t.2 += job.work;
            }
        }
        for ((t_ref, t_avx2, work), kind) in totals.iter().zip(["int8", "int16"]) {
            println!(
                "all {kind} convolutions: {:.2} G MAC/s reference, {:.2} G MAC/s AVX2",
                *work as f64 / t_ref / 1e9,
                *work as f64 / t_avx2 / 1e9
            );
        }
    }

    fn bench_kernels(c: &mut Criterion) {
        let mut jobs = jobs();
        summary(&mut jobs);
        let mut group = c.benchmark_group("kernels");
        group
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(600))
            .sample_size(20);
        for job in jobs.iter_mut() {
            group.throughput(Throughput::Elements(job.work));
            group.bench_function(BenchmarkId::new("reference", &job.name), |b| {
                b.iter(&mut job.reference)
            });
            group.bench_function(BenchmarkId::new("avx2", &job.name), |b| {
                b.iter(&mut job.avx2)
            });
        }
        group.finish();
    }

    criterion_group!(benches, bench_kernels);

    pub fn run() {
        benches();
    }
}

#[cfg(target_arch = "x86_64")]
fn main() {
    x86::run();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    eprintln!("the kernel benchmarks measure the x86-64 kernels: nothing to run here");
}
