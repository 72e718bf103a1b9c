//! Splitting of a buffer into one segment per rank.

use std::ops::Range;

/// Splits `len` elements into `parts` contiguous ranges whose sizes differ by at most
/// one, the larger ones first.
pub fn segment_ranges(len: usize, parts: usize) -> Vec<Range<usize>> {
    assert!(parts > 0, "at least one part");
    let base = len / parts;
    let extra = len % parts;
    let mut start = 0;
    (0..parts)
        .map(|index| {
            let size = base + usize::from(index < extra);
            let range = start..start + size;
            start += size;
            range
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_buffer() {
        assert_eq!(segment_ranges(10, 3), [0..4, 4..7, 7..10]);
        assert_eq!(segment_ranges(2, 4), [0..1, 1..2, 2..2, 2..2]);
        assert_eq!(segment_ranges(0, 2), [0..0, 0..0]);
    }
}
