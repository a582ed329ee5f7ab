//! The remembered reading ids of one partition in about 28 bytes each
//! (a `HashMap` entry plus a `BTreeSet` entry per id took about 94).
//!
//! Ids are stored in arrival order in blocks of up to [`BLOCK_LEN`]: per id
//! its 128-bit key and its event time as a 32-bit offset from the block's
//! base time (20 bytes); the generation of each run of ids, not of each id.
//! A `hashbrown` table of 32-bit locations (block, position) finds an id by
//! key: about 8 bytes an id at its load factor. Evicted and purged ids are
//! marked dead in place; a block is freed when its last id goes, which
//! eviction, oldest first, brings about in arrival order.
//!
//! Eviction needs the oldest id by (event time, key), the order the store
//! has always evicted in: each block knows its oldest live id, and a set of
//! those heads (one per block, a few hundred) gives the oldest of all. A
//! block sorts its positions by (time, key) the first time it holds the
//! oldest id, then hands them out in that order.

use std::collections::BTreeSet;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::DedupKey;
use crate::process::{FastMap, FastSet};

/// Position bits of a location; the other bits name the block. Tests use
/// blocks of 16 ids, so that a few hundred ids span many blocks.
#[cfg(not(test))]
const POS_BITS: u32 = 12;
#[cfg(test)]
const POS_BITS: u32 = 4;
/// Ids per block.
pub(super) const BLOCK_LEN: usize = 1 << POS_BITS;
/// Blocks a 32-bit location can name.
const MAX_BLOCKS: usize = 1 << (32 - POS_BITS);

/// Up to [`BLOCK_LEN`] ids in arrival order.
#[derive(Debug, Clone)]
struct Block {
    base_ms: i64,
    keys: Vec<DedupKey>,
    /// Event time − `base_ms`.
    offsets: Vec<i32>,
    /// One bit per position: the id is no longer held.
    dead: Vec<u64>,
    /// Runs of one generation: (end position, exclusive; generation).
    runs: Vec<(u16, u32)>,
    /// Lowest and highest generation held.
    generations: (u32, u32),
    live: u32,
    /// Positions by (time, key), handed out from `next` on; valid while
    /// `ordered` (no id was added since it was built).
    order: Vec<u16>,
    next: usize,
    ordered: bool,
    /// The oldest live id: (time, key).
    head: Option<(i64, DedupKey)>,
}

impl Block {
    fn new(base_ms: i64) -> Self {
        Self {
            base_ms,
            keys: Vec::new(),
            offsets: Vec::new(),
            dead: Vec::new(),
            runs: Vec::new(),
            generations: (u32::MAX, 0),
            live: 0,
            order: Vec::new(),
            next: 0,
            ordered: false,
            head: None,
        }
    }

    /// The offset of `t_ms` in this block, if it has room for it.
    fn offset(&self, t_ms: i64) -> Option<i32> {
        if self.keys.len() >= BLOCK_LEN {
            return None;
        }
        i32::try_from(t_ms.checked_sub(self.base_ms)?).ok()
    }

    fn is_live(&self, pos: usize) -> bool {
        pos < self.keys.len()
            && self
                .dead
                .get(pos / 64)
                .is_none_or(|w| w & (1 << (pos % 64)) == 0)
    }

    fn mark_dead(&mut self, pos: usize) {
        if self.dead.len() <= pos / 64 {
            self.dead.resize(pos / 64 + 1, 0);
        }
        self.dead[pos / 64] |= 1 << (pos % 64);
    }

    /// Sort key of a position: (time, key).
    fn rank(&self, pos: usize) -> (i32, DedupKey) {
        (self.offsets[pos], self.keys[pos])
    }

    fn time(&self, pos: usize) -> i64 {
        self.base_ms + i64::from(self.offsets[pos])
    }

    fn generation(&self, pos: usize) -> u32 {
        let run = self
            .runs
            .partition_point(|&(end, _)| usize::from(end) <= pos);
        self.runs.get(run).map_or(0, |&(_, g)| g)
    }

    /// Positions of each run: (generation, start..end).
    fn runs(&self) -> impl Iterator<Item = (u32, std::ops::Range<usize>)> + '_ {
        let starts = std::iter::once(0).chain(self.runs.iter().map(|&(end, _)| usize::from(end)));
        self.runs
            .iter()
            .zip(starts)
            .map(|(&(end, g), start)| (g, start..usize::from(end)))
    }

    /// The oldest live id, sorting the positions first if they are not.
    fn find_head(&mut self) -> Option<(i64, DedupKey)> {
        if self.live == 0 {
            return None;
        }
        if !self.ordered {
            let mut order: Vec<u16> = (0..self.keys.len())
                .filter(|&p| self.is_live(p))
                .map(|p| p as u16)
                .collect();
            order.sort_unstable_by_key(|&p| self.rank(usize::from(p)));
            self.order = order;
            self.next = 0;
            self.ordered = true;
        }
        while let Some(&p) = self.order.get(self.next) {
            let p = usize::from(p);
            if self.is_live(p) {
                return Some((self.time(p), self.keys[p]));
            }
            self.next += 1;
        }
        None
    }
}

/// Remembered ids: (key → event time, generation), oldest first on demand.
#[derive(Debug, Clone)]
pub(super) struct IdSet {
    /// Locations: block slot << [`POS_BITS`] | position.
    index: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    blocks: Vec<Option<Block>>,
    free: Vec<u32>,
    /// The block ids are added to.
    open: Option<u32>,
    /// Each block's oldest id: (time, key, slot).
    heads: BTreeSet<(i64, DedupKey, u32)>,
    len: usize,
}

impl Default for IdSet {
    fn default() -> Self {
        Self {
            index: HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            blocks: Vec::new(),
            free: Vec::new(),
            open: None,
            heads: BTreeSet::new(),
            len: 0,
        }
    }
}

fn split(loc: u32) -> (usize, usize) {
    ((loc >> POS_BITS) as usize, (loc as usize) & (BLOCK_LEN - 1))
}

fn key_at(blocks: &[Option<Block>], loc: u32) -> DedupKey {
    let (slot, pos) = split(loc);
    blocks[slot].as_ref().map_or((0, 0), |b| b.keys[pos])
}

impl IdSet {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn hash(&self, key: &DedupKey) -> u64 {
        self.hasher.hash_one(key)
    }

    fn find(&self, key: &DedupKey) -> Option<u32> {
        let blocks = &self.blocks;
        self.index
            .find(self.hash(key), |&loc| key_at(blocks, loc) == *key)
            .copied()
    }

    pub(super) fn contains(&self, key: &DedupKey) -> bool {
        self.find(key).is_some()
    }

    /// The event time and generation of `key`, if held.
    #[cfg(test)]
    pub(super) fn get(&self, key: &DedupKey) -> Option<(i64, u32)> {
        let (slot, pos) = split(self.find(key)?);
        let b = self.blocks[slot].as_ref()?;
        Some((b.time(pos), b.generation(pos)))
    }

    /// Adds `key` (not held: the caller checked) at `t_ms` in `generation`.
    pub(super) fn insert(&mut self, key: DedupKey, t_ms: i64, generation: u32) {
        let slot = self.open_for(t_ms);
        let Some(b) = self.blocks[slot].as_mut() else {
            return;
        };
        let Some(offset) = b.offset(t_ms) else {
            return;
        };
        let pos = b.keys.len();
        b.keys.push(key);
        b.offsets.push(offset);
        match b.runs.last_mut() {
            Some((end, g)) if *g == generation => *end = (pos + 1) as u16,
            _ => b.runs.push(((pos + 1) as u16, generation)),
        }
        b.generations = (
            b.generations.0.min(generation),
            b.generations.1.max(generation),
        );
        b.live += 1;
        if b.ordered {
            // Mostly the newest: appended; otherwise put in its place.
            let rank = b.rank(pos);
            let at = b.next + b.order[b.next..].partition_point(|&p| b.rank(usize::from(p)) < rank);
            b.order.insert(at, pos as u16);
        }
        let old_head = b.head;
        if old_head.is_none_or(|h| (t_ms, key) < h) {
            b.head = Some((t_ms, key));
            if let Some((t, k)) = old_head {
                self.heads.remove(&(t, k, slot as u32));
            }
            self.heads.insert((t_ms, key, slot as u32));
        }
        self.len += 1;
        let loc = ((slot as u32) << POS_BITS) | pos as u32;
        let hash = self.hash(&key);
        let Self {
            index,
            blocks,
            hasher,
            ..
        } = self;
        index.insert_unique(hash, loc, |&l| hasher.hash_one(key_at(blocks, l)));
    }

    /// The slot of a block with room for an id at `t_ms`.
    fn open_for(&mut self, t_ms: i64) -> usize {
        if let Some(slot) = self.open
            && self.blocks[slot as usize]
                .as_ref()
                .is_some_and(|b| b.offset(t_ms).is_some())
        {
            return slot as usize;
        }
        if let Some(b) = self.open.and_then(|s| self.blocks[s as usize].as_mut()) {
            // Sealed short (an id out of its time range): give back the slack.
            b.keys.shrink_to_fit();
            b.offsets.shrink_to_fit();
        }
        if self.free.is_empty() && self.blocks.len() >= MAX_BLOCKS {
            self.compact();
        }
        let block = Some(Block::new(t_ms));
        let slot = match self.free.pop() {
            Some(s) => {
                self.blocks[s as usize] = block;
                s
            }
            None => {
                self.blocks.push(block);
                (self.blocks.len() - 1) as u32
            }
        };
        self.open = Some(slot);
        slot as usize
    }

    /// Rebuilds the blocks from the live ids (when the locations run out:
    /// blocks each holding a few stragglers).
    fn compact(&mut self) {
        let mut live = Vec::with_capacity(self.len);
        for b in self.blocks.iter().flatten() {
            for (g, range) in b.runs() {
                for pos in range.filter(|&p| b.is_live(p)) {
                    live.push((b.keys[pos], b.time(pos), g));
                }
            }
        }
        *self = Self {
            hasher: self.hasher.clone(),
            ..Self::default()
        };
        self.index.reserve(live.len(), |_| 0);
        for (key, t, g) in live {
            self.insert(key, t, g);
        }
    }

    /// Marks the id at `loc` dead; the caller settles its block afterwards.
    fn kill(&mut self, loc: u32) -> Option<(DedupKey, i64, u32)> {
        let (slot, pos) = split(loc);
        let b = self.blocks[slot].as_mut()?;
        if !b.is_live(pos) {
            return None;
        }
        let (key, t, g) = (b.keys[pos], b.time(pos), b.generation(pos));
        b.mark_dead(pos);
        b.live -= 1;
        self.len -= 1;
        if let Ok(entry) = self
            .index
            .find_entry(self.hasher.hash_one(key), |&l| l == loc)
        {
            entry.remove();
        }
        Some((key, t, g))
    }

    /// Updates a block's head after ids were killed in it; frees it empty.
    fn settle(&mut self, slot: usize) {
        let Some(b) = self.blocks[slot].as_mut() else {
            return;
        };
        let head = b.find_head();
        if head == b.head {
            return;
        }
        if let Some((t, k)) = b.head {
            self.heads.remove(&(t, k, slot as u32));
        }
        b.head = head;
        match head {
            Some((t, k)) => {
                self.heads.insert((t, k, slot as u32));
            }
            None => {
                self.blocks[slot] = None;
                if self.open == Some(slot as u32) {
                    self.open = None;
                }
                if slot + 1 == self.blocks.len() {
                    self.blocks.pop();
                } else {
                    self.free.push(slot as u32);
                }
            }
        }
    }

    /// Removes `key`: its event time and generation, if it was held.
    pub(super) fn remove(&mut self, key: &DedupKey) -> Option<(i64, u32)> {
        let loc = self.find(key)?;
        let (_, t, g) = self.kill(loc)?;
        self.settle(split(loc).0);
        Some((t, g))
    }

    /// The oldest id: (event time, key).
    pub(super) fn oldest(&self) -> Option<(i64, DedupKey)> {
        self.heads.first().map(|&(t, k, _)| (t, k))
    }

    /// Removes the oldest id: (event time, key, generation).
    pub(super) fn pop_oldest(&mut self) -> Option<(i64, DedupKey, u32)> {
        let &(_, key, slot) = self.heads.first()?;
        let loc = self.find(&key)?;
        let (key, t, g) = self.kill(loc)?;
        self.settle(slot as usize);
        Some((t, key, g))
    }

    /// Removes the ids whose patient part `erased` accepts, telling `removed`
    /// each one's key and generation.
    pub(super) fn remove_patients(
        &mut self,
        erased: impl Fn(u64) -> bool,
        mut removed: impl FnMut(DedupKey, u32),
    ) {
        for slot in 0..self.blocks.len() {
            let Some(b) = self.blocks[slot].as_ref() else {
                continue;
            };
            let doomed: Vec<u32> = (0..b.keys.len())
                .filter(|&p| b.is_live(p) && erased(b.keys[p].0))
                .map(|p| ((slot as u32) << POS_BITS) | p as u32)
                .collect();
            if doomed.is_empty() {
                continue;
            }
            for loc in doomed {
                if let Some((key, _, g)) = self.kill(loc) {
                    removed(key, g);
                }
            }
            self.settle(slot);
        }
    }

    /// The live locations of `generation`'s ids in each block.
    fn generation_locs(&self, which: impl Fn(u32) -> bool) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for (slot, b) in self.blocks.iter().enumerate() {
            let Some(b) = b else { continue };
            for (g, range) in b.runs().filter(|(g, _)| which(*g)) {
                for pos in range.filter(|&p| b.is_live(p)) {
                    out.push((g, ((slot as u32) << POS_BITS) | pos as u32));
                }
            }
        }
        out
    }

    /// Removes every id of `generation`; returns how many.
    pub(super) fn remove_generation(&mut self, generation: u32) -> usize {
        let in_range = |b: &Block| (b.generations.0..=b.generations.1).contains(&generation);
        let mut removed = 0;
        for slot in 0..self.blocks.len() {
            let Some(b) = self.blocks[slot].as_ref().filter(|b| in_range(b)) else {
                continue;
            };
            let locs: Vec<u32> = b
                .runs()
                .filter(|(g, _)| *g == generation)
                .flat_map(|(_, range)| range)
                .filter(|&p| b.is_live(p))
                .map(|p| ((slot as u32) << POS_BITS) | p as u32)
                .collect();
            if locs.is_empty() {
                continue;
            }
            for loc in locs {
                removed += usize::from(self.kill(loc).is_some());
            }
            self.settle(slot);
        }
        removed
    }

    /// The ids of the generations `which` holds: (generation, key, time).
    pub(super) fn generation_entries(&self, which: &FastSet<u32>) -> Vec<(u32, DedupKey, i64)> {
        self.generation_locs(|g| which.contains(&g))
            .into_iter()
            .filter_map(|(g, loc)| {
                let (slot, pos) = split(loc);
                let b = self.blocks[slot].as_ref()?;
                Some((g, b.keys[pos], b.time(pos)))
            })
            .collect()
    }

    /// Ids held per generation.
    pub(super) fn generation_counts(&self) -> FastMap<u32, u32> {
        let mut out = FastMap::default();
        for b in self.blocks.iter().flatten() {
            for (g, range) in b.runs() {
                let n = range.filter(|&p| b.is_live(p)).count() as u32;
                if n > 0 {
                    *out.entry(g).or_default() += n;
                }
            }
        }
        out
    }

    /// Gives back growth slack (after a restore).
    pub(super) fn shrink_to_fit(&mut self) {
        let Self {
            index,
            blocks,
            hasher,
            ..
        } = self;
        index.shrink_to_fit(|&l| hasher.hash_one(key_at(blocks, l)));
        self.blocks.shrink_to_fit();
        self.free.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_back_oldest_first_across_blocks() {
        let mut s = IdSet::default();
        let n = BLOCK_LEN * 2 + 100;
        for i in 0..n as u64 {
            // Arrival order is not time order.
            let t = ((i * 7919) % n as u64) as i64;
            s.insert((i, i), t, (i / 1000) as u32);
        }
        assert_eq!(s.len(), n);
        for expect in 0..n as i64 {
            let (t, key, g) = s.pop_oldest().expect("held");
            assert_eq!(t, expect);
            assert_eq!(g, (key.0 / 1000) as u32);
            assert!(!s.contains(&key));
        }
        assert_eq!(s.len(), 0);
        assert!(s.blocks.is_empty(), "every block freed");
    }

    #[test]
    fn times_far_apart_open_new_blocks() {
        let mut s = IdSet::default();
        s.insert((1, 1), 0, 0);
        s.insert((2, 2), i64::from(i32::MAX) * 3, 0);
        s.insert((3, 3), -i64::from(i32::MAX) * 3, 1);
        assert_eq!(s.blocks.len(), 3);
        assert_eq!(s.get(&(2, 2)), Some((i64::from(i32::MAX) * 3, 0)));
        assert_eq!(s.oldest(), Some((-i64::from(i32::MAX) * 3, (3, 3))));
    }

    #[test]
    fn generations_are_removed_and_counted_by_run() {
        let mut s = IdSet::default();
        for i in 0..30_u64 {
            s.insert((i % 3, i), i as i64, (i / 10) as u32);
        }
        assert_eq!(s.generation_counts().get(&1), Some(&10));
        assert_eq!(s.remove_generation(1), 10);
        assert_eq!(s.len(), 20);
        assert!(!s.contains(&(0, 12)) && s.contains(&(0, 21)));
        let mut gone = Vec::new();
        s.remove_patients(|p| p == 0, |k, g| gone.push((k, g)));
        assert_eq!(gone.len(), 7);
        let which: FastSet<u32> = [2].into_iter().collect();
        assert_eq!(s.generation_entries(&which).len(), 7);
        assert_eq!(s.oldest(), Some((1, (1, 1))));
    }
}
