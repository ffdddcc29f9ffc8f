//! A limit on things held at once (sessions, pooled connections) that can
//! be changed while they are held: a semaphore whose size a configuration
//! reload may raise or lower. Raising adds places at once; lowering takes
//! free places out at once and busy ones as they are given back, so
//! nothing held is interrupted and the number held never rises above the
//! new size once it has come down to it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

/// A resizable limit.
#[derive(Debug)]
pub struct Limit {
    permits: Arc<Semaphore>,
    /// The size in force; the lock also orders resizes.
    size: Mutex<usize>,
    /// Places still to take out after a shrink (held now; forgotten as
    /// they are given back).
    shrinking: Arc<AtomicUsize>,
}

impl Limit {
    /// A limit of `size` places.
    pub fn new(size: usize) -> Self {
        Limit {
            permits: Arc::new(Semaphore::new(size)),
            size: Mutex::new(size),
            shrinking: Arc::default(),
        }
    }

    /// The semaphore to take places from.
    pub fn permits(&self) -> &Arc<Semaphore> {
        &self.permits
    }

    /// The size in force.
    pub fn size(&self) -> usize {
        *self.size.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Places held now (above the size while a shrink waits for them).
    pub fn held(&self) -> usize {
        let total = self.size() + self.shrinking.load(Ordering::Relaxed);
        total.saturating_sub(self.permits.available_permits())
    }

    /// Makes the size `new` (see the module doc). Call within a tokio
    /// runtime: a shrink that waits for busy places runs as a task.
    pub fn resize(&self, new: usize) {
        let mut size = self.size.lock().unwrap_or_else(|e| e.into_inner());
        let old = std::mem::replace(&mut *size, new);
        if new >= old {
            self.permits.add_permits(new - old);
            return;
        }
        let excess = old - new;
        let rest = excess - self.permits.forget_permits(excess);
        if rest == 0 {
            return;
        }
        self.shrinking.fetch_add(rest, Ordering::Relaxed);
        let (permits, shrinking) = (Arc::clone(&self.permits), Arc::clone(&self.shrinking));
        tokio::spawn(async move {
            for _ in 0..rest {
                match permits.acquire().await {
                    Ok(p) => p.forget(),
                    Err(_) => return,
                }
                shrinking.fetch_sub(1, Ordering::Relaxed);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shrinking_waits_for_busy_places_and_growing_is_immediate() {
        let limit = Limit::new(3);
        let held: Vec<_> = (0..3)
            .map(|_| Arc::clone(limit.permits()).try_acquire_owned().unwrap())
            .collect();
        limit.resize(1);
        assert_eq!((limit.size(), limit.held()), (1, 3));
        drop(held);
        // The shrink's task takes the two places given back.
        while limit.held() != 0 || limit.permits().available_permits() != 1 {
            tokio::task::yield_now().await;
        }
        let one = Arc::clone(limit.permits()).try_acquire_owned().unwrap();
        assert!(Arc::clone(limit.permits()).try_acquire_owned().is_err());
        limit.resize(2);
        let two = Arc::clone(limit.permits()).try_acquire_owned().unwrap();
        assert_eq!(limit.held(), 2);
        drop((one, two));
        assert_eq!(limit.held(), 0);
    }
}
