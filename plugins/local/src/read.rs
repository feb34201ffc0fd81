//! The read path: which blocks and head runs a fetch needs is decided under
//! the lock; decoding happens outside it, split across cores when a fetch
//! is large enough for threads to pay off. Bucket fetches (aggregation
//! pushdown) are in `fold`, on the same plans and decoders.

use heroic_plugin_api::abi_stable::std_types::RVec;
use heroic_plugin_api::types::{FetchRequest, FetchResponse, FetchedSeries, PointBatch, TimeRange};

use std::sync::Arc;

use crate::block_cache::{BlockCache, DecodedBlock};
use crate::codec::{decode_block, decode_compact};
use crate::error::Result;
use crate::head::{merge_runs, Run};
use crate::store::{normalized, BlockRef, Inner, Mem};

/// Below this many block points a fetch is decoded on the calling thread:
/// spawning workers costs tens of microseconds.
const PARALLEL_MIN_POINTS: usize = 200_000;

/// What to read for one requested series.
pub(crate) struct Plan {
    pub(crate) index: usize,
    pub(crate) blocks: Vec<BlockRef>,
    pub(crate) heads: Vec<Run>,
}

impl Plan {
    pub(crate) fn block_points(&self) -> usize {
        self.blocks.iter().map(|b| b.meta.count as usize).sum()
    }

    /// About how many of its block points fall in `range` (assuming each
    /// block's points spread evenly over its time span): what a read of
    /// cached blocks, which writes out only the range, costs.
    pub(crate) fn points_in(&self, range: TimeRange) -> usize {
        let part = |b: &BlockRef| {
            let (lo, hi) = (b.meta.min_ts.max(range.start), b.meta.max_ts.min(range.end));
            let span = (b.meta.max_ts as f64 - b.meta.min_ts as f64).max(1.0);
            (b.meta.count as f64 * ((hi as f64 - lo as f64 + 1.0) / span).clamp(0.0, 1.0)) as usize
        };
        self.blocks.iter().map(part).sum()
    }
}

fn damaged(b: &BlockRef, e: crate::Error) -> crate::Error {
    crate::error::corrupt(&b.seg.path, format!("block at offset {}: {e}", b.meta.offset))
}

/// Buffers reused across the blocks one thread decodes, and the cache of
/// decoded blocks reads go through (compaction passes none: it reads each
/// block once).
#[derive(Default)]
pub(crate) struct Decoder<'c> {
    buf: Vec<u8>,
    scratch: Vec<i64>,
    cache: Option<&'c BlockCache>,
}

impl<'c> Decoder<'c> {
    pub(crate) fn cached(cache: &'c BlockCache) -> Decoder<'c> {
        Decoder { cache: Some(cache), ..Decoder::default() }
    }

    /// A block decoded to its compact form: from the cache, or read,
    /// decoded and (with a cache) cached.
    pub(crate) fn block(&mut self, b: &BlockRef) -> Result<Arc<DecodedBlock>> {
        if let Some(block) = self.cache.and_then(|c| c.get(b.seg.id, b.meta.offset)) {
            return Ok(block);
        }
        b.seg.read_block(&b.meta, &mut self.buf)?;
        let block = decode_compact(&self.buf, &mut self.scratch).map_err(|e| damaged(b, e))?;
        let block = Arc::new(block);
        if let Some(cache) = self.cache {
            cache.insert(b.seg.id, b.meta.offset, block.clone());
        }
        Ok(block)
    }

    /// Appends the block's points, those in `range` at least.
    fn decode_into(&mut self, b: &BlockRef, run: &mut Run, range: TimeRange) -> Result<()> {
        if self.cache.is_none() {
            b.seg.read_block(&b.meta, &mut self.buf)?;
            decode_block(&self.buf, &mut run.ts, &mut run.vals, &mut self.scratch).map_err(|e| damaged(b, e))?;
            return Ok(());
        }
        self.block(b)?.append_range(range, &mut run.ts, &mut run.vals);
        Ok(())
    }

    /// Decodes blocks (sorted by sequence) into runs trimmed to `range`.
    /// When the blocks do not overlap in time (the normal case) they are
    /// decoded straight into one run, in time order.
    pub(crate) fn read_blocks(&mut self, blocks: &[BlockRef], range: TimeRange) -> Result<Vec<Run>> {
        let mut by_time: Vec<&BlockRef> = blocks.iter().collect();
        by_time.sort_by_key(|b| b.meta.min_ts);
        let disjoint = by_time.windows(2).all(|w| w[0].meta.max_ts < w[1].meta.min_ts);
        if disjoint {
            let n: usize = blocks.iter().map(|b| b.meta.count as usize).sum();
            let mut run = Run { ts: Vec::with_capacity(n), vals: Vec::with_capacity(n) };
            for b in by_time {
                self.decode_into(b, &mut run, range)?;
            }
            run.trim(range);
            return Ok(vec![run]);
        }
        let mut runs = Vec::with_capacity(blocks.len());
        for b in blocks {
            let mut run = Run::default();
            self.decode_into(b, &mut run, range)?;
            run.trim(range);
            runs.push(run);
        }
        Ok(runs)
    }

    /// The sorted, unique points of one plan: its blocks, then its head
    /// runs (newer) merged over them.
    pub(crate) fn series(&mut self, plan: &mut Plan, range: TimeRange) -> Result<Run> {
        let mut runs = self.read_blocks(&plan.blocks, range)?;
        runs.append(&mut plan.heads);
        Ok(merge_runs(runs))
    }
}

/// Contiguous slices of plans with about the same number of points, one
/// per thread.
pub(crate) fn split(plans: &mut [Plan], threads: usize) -> Vec<&mut [Plan]> {
    let total: usize = plans.iter().map(Plan::block_points).sum();
    let share = total.div_ceil(threads).max(1);
    let mut slices: Vec<&mut [Plan]> = Vec::with_capacity(threads);
    let mut rest = plans;
    while !rest.is_empty() {
        let mut acc = 0;
        let cut = rest.iter().position(|p| {
            acc += p.block_points();
            acc >= share
        });
        let n = cut.map_or(rest.len(), |c| c + 1);
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(n);
        slices.push(head);
        rest = tail;
    }
    slices
}

/// How many threads decode `points` block points of `plans` series.
pub(crate) fn threads_for(points: usize, plans: usize, limited: bool) -> usize {
    // Asked once: std reads the cgroup's CPU quota files on every call.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    let cores = *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if !limited && points >= PARALLEL_MIN_POINTS {
        cores.min(plans)
    } else {
        1
    }
}

/// Decodes every plan, in order. Contiguous slices of plans with about the
/// same number of points go to one thread each.
fn decode_all(plans: &mut [Plan], range: TimeRange, threads: usize, cache: &BlockCache) -> Result<Vec<Run>> {
    if threads <= 1 {
        let mut d = Decoder::cached(cache);
        return plans.iter_mut().map(|p| d.series(p, range)).collect();
    }
    let slices = split(plans, threads);
    std::thread::scope(|s| {
        let workers: Vec<_> = slices
            .into_iter()
            .map(|slice| {
                s.spawn(move || {
                    let mut d = Decoder::cached(cache);
                    slice.iter_mut().map(|p| d.series(p, range)).collect::<Result<Vec<Run>>>()
                })
            })
            .collect();
        let mut out = Vec::new();
        for w in workers {
            out.extend(w.join().map_err(|_| crate::Error::Codec("decoding thread panicked".into()))??);
        }
        Ok(out)
    })
}

impl Inner {
    /// Reads points in `(start, end]` for every requested series.
    pub(crate) fn fetch(&self, req: &FetchRequest) -> Result<FetchResponse> {
        let range = req.range;
        let mut resp = FetchResponse::default();
        if range.start >= range.end {
            return Ok(resp);
        }
        let mut plans = self.plan(&req.series, req.range)?;
        let points: usize = plans.iter().map(Plan::block_points).sum();
        // A fetch that will hit its point limit is decoded one series at a
        // time, so that it stops at the limit instead of decoding everything.
        let limited = req.point_limit > 0 && points as u64 > req.point_limit;
        let in_range: usize = plans.iter().map(|p| p.points_in(range)).sum();
        let threads = threads_for(in_range, plans.len(), limited);
        let runs = if threads > 1 { Some(decode_all(&mut plans, range, threads, &self.cache)?) } else { None };
        let mut runs = runs.map(Vec::into_iter);
        let mut decoder = Decoder::cached(&self.cache);
        let mut total = 0u64;
        for mut plan in plans {
            let mut run = match runs.as_mut().and_then(Iterator::next) {
                Some(run) => run,
                None => decoder.series(&mut plan, range)?,
            };
            if req.point_limit > 0 && total + run.len() as u64 > req.point_limit {
                run.ts.truncate((req.point_limit - total) as usize);
                run.vals.truncate((req.point_limit - total) as usize);
                resp.limited = true;
            }
            total += run.len() as u64;
            if !run.ts.is_empty() {
                resp.series.push(FetchedSeries {
                    request_index: plan.index as u32,
                    resource: req.series[plan.index].resource.clone(),
                    points: PointBatch { timestamps: RVec::from(run.ts), values: RVec::from(run.vals) },
                });
            }
            if resp.limited {
                break;
            }
        }
        Ok(resp)
    }

    /// The blocks and head runs of each requested series, taken under the
    /// locks; blocks come sorted by sequence, heads oldest first.
    pub(crate) fn plan(&self, series: &[heroic_plugin_api::types::Series], range: TimeRange) -> Result<Vec<Plan>> {
        let ids: Vec<Option<u64>> = {
            let cat = self.catalog.read();
            series.iter().map(|s| cat.id_of(&normalized(s))).collect()
        };
        let mem = self.mem.read();
        Ok(ids.iter().enumerate().filter_map(|(index, id)| plan_series(&mem, index, (*id)?, range, u64::MAX)).collect())
    }

    /// Every point of series `id` from sources below sequence `before`.
    pub(crate) fn read_before(&self, id: u64, before: u64) -> Result<Run> {
        let plan = plan_series(&self.mem.read(), 0, id, TimeRange::ALL, before);
        match plan {
            Some(mut plan) => Decoder::default().series(&mut plan, TimeRange::ALL),
            None => Ok(Run::default()),
        }
    }
}

/// What to read of series `id` in `range`, from sources below sequence
/// `before` (`u64::MAX`: all of them).
fn plan_series(mem: &Mem, index: usize, id: u64, range: TimeRange, before: u64) -> Option<Plan> {
    let mut blocks: Vec<BlockRef> = mem
        .blocks
        .get(&id)
        .into_iter()
        .flatten()
        .filter(|b| b.meta.seq < before && b.meta.max_ts > range.start && b.meta.min_ts <= range.end)
        .cloned()
        .collect();
    blocks.sort_by_key(|b| (b.meta.seq, b.meta.min_ts));
    let mut heads = Vec::new();
    for (seq, head) in &mem.frozen {
        if *seq < before && mem.visible(id, *seq) {
            heads.extend(head.collect(id, range));
        }
    }
    if mem.active_seq < before {
        heads.extend(mem.active.collect(id, range));
    }
    (!blocks.is_empty() || !heads.is_empty()).then_some(Plan { index, blocks, heads })
}
