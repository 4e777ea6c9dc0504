//! The one percentile rule the pipeline uses: nearest rank.
//!
//! Smoke latencies and delivery metrics are both reported as p50/p95; computing them
//! one way, in integers, keeps the two consistent and free of float-to-index casts.

/// The 1-based nearest rank of the `percent`-th percentile among `len` sorted values:
/// `ceil(percent / 100 × len)`, clamped to `1..=len`. `len` must be at least 1.
pub fn nearest_rank(len: usize, percent: usize) -> usize {
    (percent.saturating_mul(len).div_ceil(100)).clamp(1, len.max(1))
}

#[cfg(test)]
mod tests {
    use super::nearest_rank;

    #[test]
    fn nearest_rank_is_the_ceiling_of_the_share_clamped_to_the_list() {
        assert_eq!(nearest_rank(5, 50), 3);
        assert_eq!(nearest_rank(5, 95), 5);
        assert_eq!(nearest_rank(1, 50), 1);
        assert_eq!(nearest_rank(20, 95), 19);
        assert_eq!(nearest_rank(3, 0), 1);
        assert_eq!(nearest_rank(3, 100), 3);
    }
}
