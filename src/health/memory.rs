//! What the process really holds. RSS alone overstates it after a spike: memory the program
//! has freed stays with the allocator (for reuse, or until its decay returns it to the OS),
//! so an RSS gate that closed during a spike can stay shut long after the load is gone.
//! The figure used is
//!
//! `held = max(RSS − free, file-backed RSS + allocated + allocator metadata)`
//!
//! where `free` is the resident memory jemalloc keeps in no active extent (its `resident −
//! active − metadata`: pages the program freed, kept until jemalloc's decay returns them).
//! The first term is RSS without the allocator's spare pages. jemalloc's `resident` is an
//! upper bound (it counts whole extents, touched or not), so right after a large free the
//! first term can undershoot; the second term is a floor made of what is certainly held:
//! mapped code and files (`RssFile + RssShmem` from `/proc/self/status`), the live heap and
//! the allocator's own bookkeeping.
//!
//! Measured (debug build, 1,500 lobby sockets opened, then closed): RSS 13.1 → 41.7 MB at
//! the spike and still 41.8 MB a second after the close, with 38 MB of it free in jemalloc
//! (`allocated` fell from 42.7 MB to 1.9 MB at once); RSS alone would have kept the gate
//! shut until the decay (RSS was back to 17 MB twelve seconds later). When jemalloc is not
//! the global allocator (the library's own tests), its statistics are near zero and `held`
//! is the RSS.

use tikv_jemalloc_ctl::{epoch, stats};

/// The memory figures of one sample, in MB.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MemorySample {
    /// What the process holds (see the module documentation).
    pub held_mb: f64,
    /// Resident pages jemalloc keeps without live data.
    pub allocator_free_mb: f64,
}

const MB: f64 = 1_048_576.0;

/// The memory the process holds, given its RSS in MB.
pub fn sample(rss_mb: f64) -> MemorySample {
    let Some(jemalloc) = Jemalloc::read() else {
        return MemorySample { held_mb: rss_mb, allocator_free_mb: 0.0 };
    };
    if jemalloc.resident == 0 {
        return MemorySample { held_mb: rss_mb, allocator_free_mb: 0.0 };
    }
    let free_mb = jemalloc.resident.saturating_sub(jemalloc.active + jemalloc.metadata) as f64 / MB;
    let floor_mb = file_backed_rss_mb() + (jemalloc.allocated + jemalloc.metadata) as f64 / MB;
    MemorySample { held_mb: (rss_mb - free_mb).max(floor_mb).min(rss_mb).max(0.0), allocator_free_mb: free_mb }
}

/// jemalloc's statistics, in bytes.
struct Jemalloc {
    allocated: u64,
    active: u64,
    resident: u64,
    metadata: u64,
}

impl Jemalloc {
    fn read() -> Option<Jemalloc> {
        // The statistics are a snapshot refreshed by advancing the epoch.
        epoch::advance().ok()?;
        Some(Jemalloc {
            allocated: stats::allocated::read().ok()? as u64,
            active: stats::active::read().ok()? as u64,
            resident: stats::resident::read().ok()? as u64,
            metadata: stats::metadata::read().ok()? as u64,
        })
    }
}

/// `RssFile + RssShmem` of this process in MB (0 where `/proc` has no such lines).
fn file_backed_rss_mb() -> f64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0.0 };
    status
        .lines()
        .filter_map(|l| l.strip_prefix("RssFile:").or_else(|| l.strip_prefix("RssShmem:")))
        .filter_map(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .sum::<f64>()
        / 1024.0
}

/// Lets jemalloc's background thread return freed pages to the OS on its decay schedule,
/// so RSS follows the load down too. Called once by the binary that installs jemalloc.
pub fn enable_background_purge() {
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::debug!("jemalloc's background purge thread is not available: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_jemalloc_as_the_allocator_held_is_the_rss() {
        // The library's tests run on the system allocator: jemalloc holds almost nothing.
        let s = sample(123.0);
        assert!(s.held_mb <= 123.0 && s.held_mb > 100.0, "{s:?}");
    }

    #[test]
    fn file_backed_rss_is_read_from_proc() {
        assert!(file_backed_rss_mb() > 0.0, "a running test binary maps its code");
    }
}
