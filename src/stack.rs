//! Deep recursion without stack overflow.
//!
//! A client controls how deeply its statement nests (`1+1+…+1`,
//! `((((…))))`, subqueries in subqueries), and every pass over a syntax
//! tree recurses once per level. As rustc does, the recursive passes grow
//! the stack on demand with the `stacker` crate instead of aborting the
//! process: [`guard`] at each recursive step keeps a red zone free and
//! moves onto a fresh heap-allocated segment when less is left.
//!
//! Some passes cannot be guarded, because their code is generated: the
//! derived `Drop`, `Clone`, `PartialEq`, `Debug` and sqlparser's `Visit`
//! of the syntax tree. They need their whole depth in one piece of stack.
//! So a statement's depth is measured once, after parsing (and bounded,
//! see `sql::depth`), and work on it runs inside [`with_tree`], which
//! tells every [`guard`] on this thread to keep room for an unguarded pass
//! over a tree that deep as well. Shallow statements (almost all) never
//! leave the thread's own stack.

use std::cell::Cell;

/// Stack kept free at every guarded step for the step's own frames (debug
/// builds have large ones).
const RED_ZONE: usize = 256 * 1024;

/// Stack one level of a syntax tree may take in an unguarded pass, with
/// margin. Measured in a debug build: the derived `Clone` of a `BinaryOp`
/// takes 4.3 KiB per level (three frames). Release builds take less; the
/// room is only reserved address space until a pass reaches that deep.
pub const BYTES_PER_LEVEL: usize = 8 * 1024;

/// Size of a new segment beyond the room it must keep free.
const SEGMENT: usize = 2 * 1024 * 1024;

thread_local! {
    /// Depth of the deepest syntax tree this thread is working on.
    static TREE_DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f`, one step of a recursive pass, with [`RED_ZONE`] bytes of
/// stack free, plus room for an unguarded pass over the tree in hand.
pub fn guard<R>(f: impl FnOnce() -> R) -> R {
    let room = RED_ZONE + TREE_DEPTH.with(Cell::get) * BYTES_PER_LEVEL;
    stacker::maybe_grow(room, room + SEGMENT, f)
}

/// Runs `f`, which works on a syntax tree `depth` levels deep (see
/// `sql::Statement::depth`), so that every [`guard`] inside it keeps room
/// for an unguarded pass over that tree.
pub fn with_tree<R>(depth: usize, f: impl FnOnce() -> R) -> R {
    /// Puts the outer depth back, also when `f` unwinds.
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            TREE_DEPTH.with(|d| d.set(self.0));
        }
    }
    let outer = TREE_DEPTH.with(|d| d.replace(d.get().max(depth)));
    let _restore = Restore(outer);
    guard(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth_of_recursion(n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // A frame of several KiB, as debug builds make them.
        let pad = std::hint::black_box([0u8; 4096]);
        guard(|| depth_of_recursion(n - 1)) + usize::from(pad[0] == 0)
    }

    #[test]
    fn guarded_recursion_outgrows_a_small_thread_stack() {
        let deep = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| with_tree(10, || depth_of_recursion(100_000)))
            .unwrap();
        assert_eq!(deep.join().unwrap(), 100_000);
    }

    #[test]
    fn with_tree_restores_the_outer_depth() {
        with_tree(7, || {
            with_tree(3, || assert_eq!(TREE_DEPTH.with(Cell::get), 7));
            with_tree(9, || assert_eq!(TREE_DEPTH.with(Cell::get), 9));
            assert_eq!(TREE_DEPTH.with(Cell::get), 7);
        });
        assert_eq!(TREE_DEPTH.with(Cell::get), 0);
    }
}
