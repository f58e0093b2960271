//! Fixed-capacity sample history addressed by absolute sample index.
//!
//! `heapless::HistoryBuf` keeps "the last N" but forgets where they sit in
//! the stream; beat windows are cut by absolute index (R peak − pre), so this
//! ring remembers the index of every slot. Indices are `u32` and wrap after
//! 2^32 samples (138 days at 360 Hz); all index arithmetic wraps with them.

/// The last `N` samples of a stream. `N` is a power of two, so that slot
/// `index % N` stays consistent when the index wraps.
#[derive(Clone)]
pub struct SampleRing<const N: usize> {
    buf: [i16; N],
    /// Index of the next sample to be pushed.
    next: u32,
    /// Samples held, ≤ N.
    len: u32,
}

impl<const N: usize> Default for SampleRing<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> SampleRing<N> {
    /// An empty ring whose first sample gets index 0.
    pub const fn new() -> Self {
        const {
            assert!(
                N.is_power_of_two(),
                "SampleRing capacity must be a power of two"
            )
        };
        SampleRing {
            buf: [0; N],
            next: 0,
            len: 0,
        }
    }

    /// Capacity in samples.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Index the next pushed sample will get.
    pub const fn next_index(&self) -> u32 {
        self.next
    }

    /// Append a sample, evicting the oldest when full.
    pub fn push(&mut self, v: i16) {
        if let Some(slot) = self.buf.get_mut(self.next as usize % N) {
            *slot = v;
        }
        self.next = self.next.wrapping_add(1);
        if (self.len as usize) < N {
            self.len += 1;
        }
    }

    /// The sample at absolute `index`, if still held.
    pub fn get(&self, index: u32) -> Option<i16> {
        // Age 1 is the latest sample.
        let age = self.next.wrapping_sub(index);
        if age == 0 || age > self.len {
            return None;
        }
        self.buf.get(index as usize % N).copied()
    }

    /// Whether every index in `start .. start + len` is held.
    pub fn holds(&self, start: u32, len: u32) -> bool {
        let age = self.next.wrapping_sub(start);
        len <= age && age <= self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_n_by_absolute_index() {
        let mut r = SampleRing::<4>::new();
        assert_eq!(r.get(0), None);
        for v in 0..6i16 {
            r.push(v * 10);
        }
        // Indices 2..=5 are held.
        assert_eq!(r.next_index(), 6);
        assert_eq!(r.get(1), None);
        assert_eq!(r.get(2), Some(20));
        assert_eq!(r.get(5), Some(50));
        assert_eq!(r.get(6), None);
        assert!(r.holds(2, 4));
        assert!(!r.holds(1, 2));
        assert!(!r.holds(4, 3));
        assert!(r.holds(6, 0));
    }

    #[test]
    fn wraps_the_index_space() {
        let mut r = SampleRing::<8>::new();
        r.next = u32::MAX - 2;
        for v in 0..6i16 {
            r.push(v);
        }
        assert_eq!(r.get(u32::MAX - 2), Some(0));
        assert_eq!(r.get(u32::MAX), Some(2));
        assert_eq!(r.get(0), Some(3));
        assert_eq!(r.get(2), Some(5));
        assert!(r.holds(u32::MAX - 1, 5));
    }
}
