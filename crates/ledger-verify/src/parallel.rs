//! Independent, pure checks spread over the machine's cores.
//!
//! Once the bytes are read, verification is mostly Ed25519 checks
//! (docs/performance.md), each independent of the others. Splitting them into one
//! contiguous share per core is all the scheduling they need; results keep the input
//! order, so what is reported never depends on which thread finished first.

/// Below this many items a thread costs more than it saves: starting one takes tens
/// of microseconds, one strict Ed25519 check 40–110 on the machines measured.
const MIN_PER_THREAD: usize = 4;

/// The cores this process may use, asked once per process (the store's count:
/// its bulk reads and these checks share the same cores).
pub use ledger_store::cores;

/// `items.iter().map(f)`, on up to one thread per core (the calling thread takes
/// the first share, so one thread fewer is started); a panic in `f` is raised again
/// here.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = cores().min(items.len() / MIN_PER_THREAD).max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let share = items.len().div_ceil(threads);
    let f = &f;
    let mut chunks = items.chunks(share);
    let first = chunks.next().unwrap_or_default();
    std::thread::scope(|scope| {
        let handles: Vec<_> = chunks
            .map(|chunk| scope.spawn(move || chunk.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut results: Vec<R> = first.iter().map(f).collect();
        for handle in handles {
            results.extend(
                handle
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            );
        }
        results
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_keep_the_input_order_whatever_the_split() {
        for n in [0, 1, 3, 4, 7, 8, 9, 100, 1001] {
            let items: Vec<usize> = (0..n).collect();
            let doubled = super::map(&items, |i| i * 2);
            assert_eq!(
                doubled,
                items.iter().map(|i| i * 2).collect::<Vec<_>>(),
                "{n}"
            );
        }
    }

    #[test]
    #[should_panic(expected = "item 42")]
    fn a_panic_in_a_check_is_not_swallowed() {
        let items: Vec<usize> = (0..100).collect();
        let _ = super::map(&items, |i| assert_ne!(*i, 42, "item 42"));
    }
}
