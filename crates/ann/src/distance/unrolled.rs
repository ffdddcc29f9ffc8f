//! The loop every SIMD kernel shares, written once as a macro.
//!
//! A kernel is a reduction over two slices: load a register's worth of lanes
//! from each, fold them into an accumulator, sum the accumulator's lanes at the
//! end. The per-ISA files only say how to load (full and partial registers),
//! how to add and reduce accumulators, and the one-line step that makes the
//! metric. The loop keeps four independent accumulators so that the latency of
//! an FMA (4 cycles) or vector add does not serialise the loop, then takes the
//! up to three whole registers left, then loads the remainder (fewer lanes
//! than a register) with the ISA's partial load, which fills missing lanes with zeros — a zero
//! lane adds nothing to any metric here.
//!
//! The generated function is safe to call but wraps a `#[target_feature]`
//! function: it must only be reachable through a table that is handed out
//! after the features were detected (see each ISA's `kernels()`).

/// Defines a safe kernel `fn $name(a: &[T], b: &[T]) -> R` over the common
/// prefix of `a` and `b` (the scalar kernels' `zip` semantics), unrolled four
/// accumulators wide. `load(ptr)` reads a full register, `load_tail(ptr, len)`
/// reads `len < lanes` elements and zeros the rest.
macro_rules! unrolled_kernel {
    (
        $(#[$doc:meta])*
        fn $name:ident(&[$t:ty]) -> $ret:ty;
        features: $features:literal,
        lanes: $lanes:expr,
        zero: $zero:expr,
        load: $load:path,
        load_tail: $load_tail:path,
        add: $add:path,
        reduce: $reduce:expr,
        step: |$acc:ident, $x:ident, $y:ident| $step:expr $(,)?
    ) => {
        $(#[$doc])*
        fn $name(a: &[$t], b: &[$t]) -> $ret {
            #[target_feature(enable = $features)]
            unsafe fn unrolled(a: &[$t], b: &[$t]) -> $ret {
                const LANES: usize = $lanes;
                let n = a.len().min(b.len());
                let (pa, pb) = (a.as_ptr(), b.as_ptr());
                let mut acc = [$zero; 4];
                let mut i = 0;
                while i + 4 * LANES <= n {
                    for (k, slot) in acc.iter_mut().enumerate() {
                        // SAFETY: i + (k + 1) * LANES <= n, within both slices.
                        let ($x, $y) = unsafe {
                            (
                                $load(pa.add(i + k * LANES)),
                                $load(pb.add(i + k * LANES)),
                            )
                        };
                        let $acc = *slot;
                        *slot = $step;
                    }
                    i += 4 * LANES;
                }
                // Fewer than four registers are left: one step into each of
                // the first three accumulators (fixed slots keep them in
                // registers), the partial remainder into the fourth.
                for slot in &mut acc[..3] {
                    if i + LANES > n {
                        break;
                    }
                    // SAFETY: i + LANES <= n, within both slices.
                    let ($x, $y) = unsafe { ($load(pa.add(i)), $load(pb.add(i))) };
                    let $acc = *slot;
                    *slot = $step;
                    i += LANES;
                }
                if i < n {
                    // SAFETY: reads exactly the n - i < LANES elements left.
                    let ($x, $y) =
                        unsafe { ($load_tail(pa.add(i), n - i), $load_tail(pb.add(i), n - i)) };
                    let $acc = acc[3];
                    acc[3] = $step;
                }
                let [a0, a1, a2, a3] = acc;
                $reduce($add($add(a0, a1), $add(a2, a3)))
            }
            // SAFETY: this function is only reachable through a kernel table
            // that its module hands out after detecting `$features`.
            unsafe { unrolled(a, b) }
        }
    };
}

/// Defines the three float metrics (squared L2, dot, L1) for one element
/// type from an ISA's register operations.
macro_rules! float_kernels {
    (
        $t:ty => $l2:ident, $dot:ident, $l1:ident;
        features: $features:literal,
        lanes: $lanes:expr,
        zero: $zero:expr,
        load: $load:path,
        load_tail: $load_tail:path,
        add: $add:path,
        sub: $sub:path,
        fmadd: $fmadd:path,
        abs: $abs:path,
        reduce: $reduce:path $(,)?
    ) => {
        $crate::distance::unrolled::unrolled_kernel! {
            /// Sum of squared differences.
            fn $l2(&[$t]) -> f32;
            features: $features, lanes: $lanes, zero: $zero,
            load: $load, load_tail: $load_tail, add: $add, reduce: $reduce,
            step: |acc, x, y| {
                let d = $sub(x, y);
                $fmadd(d, d, acc)
            },
        }
        $crate::distance::unrolled::unrolled_kernel! {
            /// Dot product.
            fn $dot(&[$t]) -> f32;
            features: $features, lanes: $lanes, zero: $zero,
            load: $load, load_tail: $load_tail, add: $add, reduce: $reduce,
            step: |acc, x, y| $fmadd(x, y, acc),
        }
        $crate::distance::unrolled::unrolled_kernel! {
            /// Sum of absolute differences.
            fn $l1(&[$t]) -> f32;
            features: $features, lanes: $lanes, zero: $zero,
            load: $load, load_tail: $load_tail, add: $add, reduce: $reduce,
            step: |acc, x, y| $add(acc, $abs($sub(x, y))),
        }
    };
}

pub(super) use {float_kernels, unrolled_kernel};
