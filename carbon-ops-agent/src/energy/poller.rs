//! A fixed-rate ticker scheduled against `CLOCK_MONOTONIC` with absolute deadlines.
//!
//! Tick `k` is due at `start + k × interval`, computed from the start and never from the
//! previous wake-up, so sleep overshoot does not accumulate (600 ticks in 60 s, ±1). The thread
//! sleeps with `clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)` to the deadline. A tick whose
//! deadline has passed fires at once (caught up, not skipped) and records its lateness. After a
//! very long stall (suspend) beyond `max_catch_up`, the schedule is re-anchored instead of
//! firing thousands of back-to-back ticks, and the tick says so. Usable from any std thread.

use serde::Serialize;
use std::time::Duration;

/// Nanoseconds on `CLOCK_MONOTONIC` (the clock the eBPF side's `bpf_ktime_get_ns` uses).
pub fn monotonic_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC is always supported.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// Sleep until the monotonic instant `deadline_ns` (absolute), retrying on signals.
pub fn sleep_until_ns(deadline_ns: u64) {
    let ts = libc::timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (deadline_ns % 1_000_000_000) as libc::c_long,
    };
    loop {
        // SAFETY: `ts` is a valid timespec; with TIMER_ABSTIME the remainder pointer may be null.
        let rc = unsafe {
            libc::clock_nanosleep(
                libc::CLOCK_MONOTONIC,
                libc::TIMER_ABSTIME,
                &ts,
                std::ptr::null_mut(),
            )
        };
        if rc != libc::EINTR {
            return;
        }
    }
}

/// One tick of the ticker.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Tick {
    /// 0, 1, 2, … since the ticker started (continues across re-anchoring).
    pub index: u64,
    /// When the tick was due (monotonic ns).
    pub scheduled_ns: u64,
    /// When it fired (monotonic ns): the instant to read energy and eBPF at.
    pub actual_ns: u64,
    /// `actual − scheduled`.
    pub lateness_ns: u64,
    /// The schedule was re-anchored before this tick after a stall beyond `max_catch_up`.
    pub reanchored: bool,
}

/// Fixed-rate ticker.
#[derive(Clone, Debug)]
pub struct Ticker {
    interval_ns: u64,
    anchor_ns: u64,
    anchor_index: u64,
    next: u64,
    max_catch_up_ns: u64,
    late_ticks: u64,
    max_lateness_ns: u64,
}

impl Ticker {
    /// A ticker whose first tick is due now and every `interval` after. The interval is at
    /// least 1 ms.
    pub fn new(interval: Duration) -> Ticker {
        Ticker::starting_at(interval, monotonic_now_ns())
    }

    /// A ticker whose first tick is due at `start_ns`.
    pub fn starting_at(interval: Duration, start_ns: u64) -> Ticker {
        let interval_ns = u64::try_from(interval.as_nanos())
            .unwrap_or(u64::MAX)
            .max(1_000_000);
        Ticker {
            interval_ns,
            anchor_ns: start_ns,
            anchor_index: 0,
            next: 0,
            max_catch_up_ns: 60_000_000_000,
            late_ticks: 0,
            max_lateness_ns: 0,
        }
    }

    /// Beyond this lateness the schedule is re-anchored (default 60 s).
    pub fn with_max_catch_up(mut self, max: Duration) -> Ticker {
        self.max_catch_up_ns = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
        self
    }

    /// The interval in nanoseconds.
    pub fn interval_ns(&self) -> u64 {
        self.interval_ns
    }

    /// Ticks that fired at least one millisecond after their deadline.
    pub fn late_ticks(&self) -> u64 {
        self.late_ticks
    }

    /// The largest lateness seen.
    pub fn max_lateness_ns(&self) -> u64 {
        self.max_lateness_ns
    }

    /// Deadline of tick `index` (absolute, from the anchor: no drift).
    pub fn deadline_ns(&self, index: u64) -> u64 {
        self.anchor_ns.saturating_add(
            index
                .saturating_sub(self.anchor_index)
                .saturating_mul(self.interval_ns),
        )
    }

    /// Block until the next tick is due and return it.
    pub fn wait_next(&mut self) -> Tick {
        let index = self.next;
        let mut scheduled = self.deadline_ns(index);
        let mut now = monotonic_now_ns();
        let mut reanchored = false;
        if now < scheduled {
            sleep_until_ns(scheduled);
            now = monotonic_now_ns().max(scheduled);
        } else if now - scheduled > self.max_catch_up_ns {
            self.anchor_ns = now;
            self.anchor_index = index;
            scheduled = now;
            reanchored = true;
        }
        self.next = index.saturating_add(1);
        let lateness_ns = now.saturating_sub(scheduled);
        if lateness_ns >= 1_000_000 {
            self.late_ticks += 1;
        }
        self.max_lateness_ns = self.max_lateness_ns.max(lateness_ns);
        Tick {
            index,
            scheduled_ns: scheduled,
            actual_ns: now,
            lateness_ns,
            reanchored,
        }
    }
}
