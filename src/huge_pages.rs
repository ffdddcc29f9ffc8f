//! The process's allocator: the system's, except that blocks of 4 MiB and
//! more (vector columns, 8-bit codes, graph layers, visited sets) are
//! mapped on their own, on 2 MiB boundaries, and advised for transparent
//! huge pages before their first touch.
//!
//! A graph walk reads a few cache lines at random places of a large array:
//! with 4 KiB pages nearly every one of them also misses the TLB. Most
//! distributions enable transparent huge pages only where a mapping asks
//! for them (`enabled = madvise`), and malloc does not ask. With 2 MiB pages
//! a shard's HNSW search at ef_search 36 on 50,000 × 384 rows took 120–140
//! µs of CPU instead of 157–167 (docs/benchmarks.md). Where transparent
//! huge pages are off the advice is ignored and the blocks are ordinary
//! mappings.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;

/// Size and alignment of a transparent huge page on x86-64 and aarch64
/// with 4 KiB base pages.
const HUGE_PAGE: usize = 2 << 20;
/// Blocks from this size on are mapped with huge pages; smaller ones go to
/// the system allocator (rounding them up would waste up to half).
const THRESHOLD: usize = 4 << 20;

/// [`System`], with huge-page mappings for blocks of at least 4 MiB.
pub struct HugePageAlloc;

/// The mapped length of a huge block: its size rounded up to whole huge
/// pages (`None` on overflow).
fn huge_len(layout: &Layout) -> Option<usize> {
    match layout.size() >= THRESHOLD && layout.align() <= HUGE_PAGE {
        true => layout.size().checked_next_multiple_of(HUGE_PAGE),
        false => None,
    }
}

/// Maps `len` bytes (a multiple of [`HUGE_PAGE`]) at a huge-page boundary,
/// zeroed, advised for huge pages; null when the kernel refuses.
fn map_huge(len: usize) -> *mut u8 {
    let Some(total) = len.checked_add(HUGE_PAGE) else {
        return ptr::null_mut();
    };
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no existing memory.
    let base = unsafe {
        libc::mmap(
            ptr::null_mut(),
            total,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return ptr::null_mut();
    }
    let start = base as usize;
    let aligned = start.next_multiple_of(HUGE_PAGE);
    let head = aligned - start;
    let tail = total - head - len;
    // SAFETY: both ranges lie inside the mapping made above and outside
    // the block returned; the advice only changes how pages are backed.
    // A failed unmap leaves slack mapped (harmless); failed advice leaves
    // ordinary pages.
    unsafe {
        if head > 0 {
            libc::munmap(base, head);
        }
        if tail > 0 {
            libc::munmap((aligned + len) as *mut libc::c_void, tail);
        }
        libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
    }
    aligned as *mut u8
}

// SAFETY: huge blocks are whole mappings of their own, made and released
// only here and told apart by their layout alone (the same layout comes
// back at dealloc and realloc, as GlobalAlloc requires); everything else is
// the system allocator's.
unsafe impl GlobalAlloc for HugePageAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match huge_len(&layout) {
            Some(len) => map_huge(len),
            None => System.alloc(layout),
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match huge_len(&layout) {
            // Fresh anonymous mappings are zeroed.
            Some(len) => map_huge(len),
            None => System.alloc_zeroed(layout),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match huge_len(&layout) {
            Some(len) => {
                libc::munmap(ptr.cast(), len);
            }
            None => System.dealloc(ptr, layout),
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (huge_len(&layout), huge_len(&new_layout)) {
            (None, None) => System.realloc(ptr, layout, new_size),
            (Some(old), Some(new)) if new == old => ptr,
            (Some(old), Some(new)) if new < old => {
                libc::munmap(ptr.add(new).cast(), old - new);
                ptr
            }
            _ => {
                let moved = self.alloc(new_layout);
                if !moved.is_null() {
                    ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The VmFlags line of the mapping that holds `addr`, from
    /// /proc/self/smaps.
    fn vm_flags(addr: usize) -> String {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((lo, hi)) = range.split_once('-') {
                    if let (Ok(lo), Ok(hi)) =
                        (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                    {
                        inside = (lo..hi).contains(&addr);
                        continue;
                    }
                }
            }
            if inside && line.starts_with("VmFlags:") {
                return line.to_string();
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    #[test]
    fn large_blocks_are_aligned_zeroed_advised_and_keep_contents() {
        let a = HugePageAlloc;
        let layout = Layout::from_size_align(THRESHOLD + 12_345, 64).unwrap();
        unsafe {
            let p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % HUGE_PAGE, 0);
            let block = std::slice::from_raw_parts_mut(p, layout.size());
            assert!(block.iter().all(|&b| b == 0));
            for (i, b) in block.iter_mut().enumerate() {
                *b = (i % 251) as u8;
            }
            if std::path::Path::new("/sys/kernel/mm/transparent_hugepage").exists() {
                assert!(
                    vm_flags(p as usize).contains(" hg"),
                    "{}",
                    vm_flags(p as usize)
                );
            }
            // Grow (moves), shrink within huge (trims), shrink to small
            // (moves to the system allocator), grow back to huge.
            let mut size = layout.size();
            let mut p = p;
            for new_size in [3 * THRESHOLD, THRESHOLD + 1, 1000, 2 * THRESHOLD] {
                let old = Layout::from_size_align(size, 64).unwrap();
                p = a.realloc(p, old, new_size);
                assert!(!p.is_null());
                let kept = size.min(new_size).min(layout.size());
                let block = std::slice::from_raw_parts(p, kept);
                assert!(block.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
                size = new_size;
            }
            a.dealloc(p, Layout::from_size_align(size, 64).unwrap());
        }
    }

    #[test]
    fn small_blocks_and_large_alignments_go_to_the_system_allocator() {
        assert_eq!(
            huge_len(&Layout::from_size_align(THRESHOLD - 1, 8).unwrap()),
            None
        );
        let odd = Layout::from_size_align(THRESHOLD, 2 * HUGE_PAGE).unwrap();
        assert_eq!(huge_len(&odd), None);
        assert_eq!(
            huge_len(&Layout::from_size_align(THRESHOLD + 1, 8).unwrap()),
            Some(THRESHOLD + HUGE_PAGE)
        );
    }
}
