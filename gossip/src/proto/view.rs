//! A small bounded set with random access, for the active and passive views.
//!
//! Views hold a handful of peers, so a `Vec` with linear lookups beats any map, and its
//! insertion order keeps random picks deterministic for a given seed.

use rand::Rng;

/// A set of at most `capacity` items in insertion order.
#[derive(Debug, Clone)]
pub(crate) struct View<T> {
    items: Vec<T>,
    capacity: usize,
}

impl<T: PartialEq + Copy> View<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            items: Vec::with_capacity(capacity.min(64)),
            capacity,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.items.len() >= self.capacity
    }

    pub(crate) fn contains(&self, item: &T) -> bool {
        self.items.contains(item)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.items.iter()
    }

    /// Inserts if absent and not full. Returns whether it was inserted.
    pub(crate) fn insert(&mut self, item: T) -> bool {
        if self.is_full() || self.contains(&item) {
            return false;
        }
        self.items.push(item);
        true
    }

    pub(crate) fn remove(&mut self, item: &T) -> bool {
        match self.items.iter().position(|x| x == item) {
            Some(index) => {
                self.items.remove(index);
                true
            }
            None => false,
        }
    }

    /// A uniformly random item that `skip` does not reject.
    pub(crate) fn pick<R: Rng>(&self, rng: &mut R, skip: impl Fn(&T) -> bool) -> Option<T> {
        let count = self.items.iter().filter(|x| !skip(x)).count();
        if count == 0 {
            return None;
        }
        let nth = rng.random_range(0..count);
        self.items.iter().filter(|x| !skip(x)).nth(nth).copied()
    }

    /// Removes and returns a uniformly random item that `skip` does not reject.
    pub(crate) fn remove_random<R: Rng>(
        &mut self,
        rng: &mut R,
        skip: impl Fn(&T) -> bool,
    ) -> Option<T> {
        let item = self.pick(rng, skip)?;
        self.remove(&item);
        Some(item)
    }

    /// Up to `n` distinct random items that `skip` does not reject.
    pub(crate) fn sample<R: Rng>(
        &self,
        rng: &mut R,
        n: usize,
        skip: impl Fn(&T) -> bool,
    ) -> Vec<T> {
        let mut pool: Vec<T> = self.items.iter().filter(|x| !skip(x)).copied().collect();
        let n = n.min(pool.len());
        for i in 0..n {
            let j = rng.random_range(i..pool.len());
            pool.swap(i, j);
        }
        pool.truncate(n);
        pool
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn bounded_and_random_picks_respect_skip() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut view = View::new(3);
        assert!(view.insert(1));
        assert!(!view.insert(1));
        assert!(view.insert(2));
        assert!(view.insert(3));
        assert!(!view.insert(4));
        assert!(view.is_full());
        for _ in 0..20 {
            assert_eq!(view.pick(&mut rng, |x| *x != 2), Some(2));
        }
        let sample = view.sample(&mut rng, 5, |_| false);
        assert_eq!(sample.len(), 3);
        assert_eq!(
            view.remove_random(&mut rng, |x| *x == 1 || *x == 2),
            Some(3)
        );
        assert_eq!(view.len(), 2);
    }
}
