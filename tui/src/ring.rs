//! Bounded containers for the live feeds: a dashboard left open all day
//! uses the same memory at night as in the morning.

use std::collections::VecDeque;

use time::OffsetDateTime;

/// Points kept per sparkline.
pub const SERIES_CAP: usize = 120;

/// A bounded queue: the oldest entry goes when a new one comes past the cap.
#[derive(Debug, Clone)]
pub struct Ring<T> {
    items: VecDeque<T>,
    cap: usize,
}

impl<T> Ring<T> {
    pub fn new(cap: usize) -> Self {
        Ring {
            items: VecDeque::with_capacity(cap.min(64)),
            cap,
        }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.items.iter()
    }

    /// Newest first.
    pub fn newest(&self) -> impl Iterator<Item = &T> {
        self.items.iter().rev()
    }
}

/// Counts per fixed time bucket (e.g. revenue per minute), for sparklines
/// that must show quiet periods as zeros rather than skip them.
#[derive(Debug, Clone)]
pub struct Series {
    bucket_seconds: i64,
    buckets: Ring<(i64, u64)>,
}

impl Series {
    pub fn new(bucket_seconds: i64) -> Self {
        Series {
            bucket_seconds,
            buckets: Ring::new(SERIES_CAP),
        }
    }

    pub fn add(&mut self, at: OffsetDateTime, amount: u64) {
        let bucket = at.unix_timestamp().div_euclid(self.bucket_seconds);
        match self.buckets.items.back_mut() {
            Some((last, total)) if *last == bucket => *total += amount,
            Some((last, _)) if *last > bucket => {
                // Late: add it where it belongs if that bucket is still kept.
                if let Some((_, total)) = self.buckets.items.iter_mut().find(|(b, _)| *b == bucket)
                {
                    *total += amount;
                }
            }
            _ => self.buckets.push((bucket, amount)),
        }
    }

    /// The last `n` buckets up to `now`, oldest first, zeros where nothing happened.
    pub fn values(&self, now: OffsetDateTime, n: usize) -> Vec<u64> {
        let current = now.unix_timestamp().div_euclid(self.bucket_seconds);
        let first = current - n as i64 + 1;
        let mut values = vec![0; n];
        for &(bucket, total) in self.buckets.iter() {
            if bucket >= first && bucket <= current {
                values[(bucket - first) as usize] = total;
            }
        }
        values
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample;

    #[test]
    fn series_fill_quiet_buckets_with_zeros() {
        let start = sample::noon();
        let mut series = Series::new(60);
        series.add(start, 5);
        series.add(start + time::Duration::seconds(30), 1);
        series.add(start + time::Duration::minutes(2), 7);
        let values = series.values(start + time::Duration::minutes(3), 4);
        assert_eq!(values, vec![6, 0, 7, 0]);
    }

    #[test]
    fn a_ring_forgets_the_oldest() {
        let mut ring = Ring::new(3);
        for i in 0..5 {
            ring.push(i);
        }
        assert_eq!(ring.iter().copied().collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(ring.newest().copied().collect::<Vec<_>>(), [4, 3, 2]);
    }
}
