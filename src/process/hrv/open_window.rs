//! One open window's beats and readings, in the changelog's own compact
//! form: about a byte a beat where a decoded beat takes 8.
//!
//! A window holds one chunk per reading that reached it, one after the
//! other in a single byte buffer:
//!
//! | field          | bytes                                          |
//! |----------------|------------------------------------------------|
//! | reading id     | length (LEB128 varint), then its UTF-8 bytes   |
//! | invalid RR     | count, u32 little endian (updated in place)    |
//! | beats          | length, u32 little endian (updated in place)   |
//! |                | the beats in [`beat_codec`] form               |
//!
//! The beats of a chunk are the bytes the changelog writes for it, so
//! writing a chunk copies them and a restore appends a record's bytes as
//! they are (after checking them). Beats are decoded only when the window
//! closes: sorted by time there, the metrics do not depend on the order in
//! which they were buffered. One buffer per window, no heap block per
//! reading id or per chunk.

use serde::{Deserialize, Serialize};

use super::beat_codec::{self, Encoder};
use super::filter::Beat;
use super::windows::EventMarks;

/// A buffered beat in 8 bytes: its time as an offset from its window's
/// start (a window is at most a day, so it fits) and its RR (positive: only
/// plausible, time-advancing beats are buffered). Sorted like [`Beat`]s of
/// one window: by time, then RR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct WindowBeat {
    dt_ms: u32,
    rr_ms: u32,
}

impl WindowBeat {
    /// `beat` of the window starting at `start_ms`; `None` when it lies
    /// outside the window's range or its RR is not positive.
    pub(super) fn new(start_ms: i64, beat: Beat) -> Option<Self> {
        Some(Self {
            dt_ms: u32::try_from(beat.t_ms.checked_sub(start_ms)?).ok()?,
            rr_ms: u32::try_from(beat.rr_ms).ok()?,
        })
    }

    /// The beat of the window starting at `start_ms`.
    pub(super) fn beat(self, start_ms: i64) -> Beat {
        Beat {
            t_ms: start_ms + i64::from(self.dt_ms),
            // Made from a positive i32.
            rr_ms: i32::try_from(self.rr_ms).unwrap_or(i32::MAX),
        }
    }
}

/// Beats and readings collected for one open window, in chunks: one per
/// reading that reached it. The state changelog writes each chunk under its
/// own key once, so a window's beats are appended, never rewritten.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenWindow {
    /// Window start, ms since the epoch.
    start_ms: i64,
    /// The chunks (see the module documentation).
    data: Vec<u8>,
    /// Where the newest chunk starts in `data`.
    last: u32,
    chunks: u32,
    beats: u32,
    /// Non-positive and implausible RR values routed to this window.
    n_invalid: u32,
}

/// One reading's share of an open window, as the changelog writes it.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ChunkRef<'a> {
    #[serde(serialize_with = "serialize_bytes")]
    beats: &'a [u8],
    n_invalid: u32,
    reading_id: &'a str,
    /// The patient's event-time marks when this chunk carries them in
    /// place of a rewritten patient head (not written when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    marks: Option<EventMarks>,
}

impl ChunkRef<'_> {
    /// The chunk carrying the patient's event-time marks.
    pub fn with_marks(self, marks: EventMarks) -> Self {
        Self {
            marks: Some(marks),
            ..self
        }
    }
}

fn serialize_bytes<S: serde::Serializer>(b: &&[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(b)
}

/// One reading's share of an open window, as a restore reads it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WindowChunk {
    #[serde(deserialize_with = "beat_codec::deserialize_bytes")]
    beats: Vec<u8>,
    n_invalid: u32,
    /// Inline up to 24 bytes: no heap block per restored chunk.
    reading_id: compact_str::CompactString,
    /// Absent from chunks that carry none (and from those written before
    /// chunks could carry them).
    #[serde(default)]
    marks: Option<EventMarks>,
}

impl WindowChunk {
    /// The patient's event-time marks this chunk carries, if any.
    pub fn marks(&self) -> Option<EventMarks> {
        self.marks
    }
}

/// A chunk read out of a window's buffer.
struct Chunk<'a> {
    reading_id: &'a str,
    n_invalid: u32,
    beats: &'a [u8],
    /// Where the invalid count is in the buffer (the beats' length follows).
    counts_at: usize,
    /// Where the next chunk starts.
    end: usize,
}

/// Where a reading adds beats to its chunk: the encoder state and where
/// the chunk's fields are.
#[derive(Debug, Clone, Copy)]
pub(super) struct ChunkWriter {
    enc: Encoder,
    counts_at: usize,
    beats_at: usize,
}

fn put_varint(out: &mut Vec<u8>, mut v: usize) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(bytes: &[u8], at: &mut usize) -> Option<usize> {
    let mut v = 0_usize;
    for shift in (0..usize::BITS).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= usize::from(b & 0x7f).checked_shl(shift)?;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn set_u32(bytes: &mut [u8], at: usize, v: u32) {
    if let Some(b) = bytes.get_mut(at..at + 4) {
        b.copy_from_slice(&v.to_le_bytes());
    }
}

impl OpenWindow {
    /// An empty window starting at `start_ms`.
    pub(super) fn starting(start_ms: i64) -> Self {
        Self {
            start_ms,
            ..Self::default()
        }
    }

    /// Window start, ms since the epoch.
    pub(super) fn start_ms(&self) -> i64 {
        self.start_ms
    }

    /// Chunks held (readings that reached the window).
    pub fn chunks(&self) -> usize {
        self.chunks as usize
    }

    /// Beats buffered.
    pub(super) fn beat_count(&self) -> usize {
        self.beats as usize
    }

    /// Non-positive and implausible RR values routed to the window.
    pub(super) fn n_invalid(&self) -> u32 {
        self.n_invalid
    }

    fn chunk_at(&self, at: usize) -> Option<Chunk<'_>> {
        let mut i = at;
        let id_len = take_varint(&self.data, &mut i)?;
        let id = std::str::from_utf8(self.data.get(i..i.checked_add(id_len)?)?).ok()?;
        let counts_at = i + id_len;
        let n_invalid = u32_at(&self.data, counts_at)?;
        let n = u32_at(&self.data, counts_at + 4)? as usize;
        let beats_at = counts_at + 8;
        let beats = self.data.get(beats_at..beats_at.checked_add(n)?)?;
        Some(Chunk {
            reading_id: id,
            n_invalid,
            beats,
            counts_at,
            end: beats_at + n,
        })
    }

    /// The chunks in order.
    fn all_chunks(&self) -> impl Iterator<Item = Chunk<'_>> {
        let mut at = Some(0);
        std::iter::from_fn(move || {
            let chunk = self.chunk_at(at.filter(|&a| a < self.data.len())?)?;
            at = Some(chunk.end);
            Some(chunk)
        })
    }

    /// Chunk `i`, `None` past the last.
    pub fn chunk(&self, i: usize) -> Option<ChunkRef<'_>> {
        self.chunks_from(i).next()
    }

    /// The chunks from number `i` on (one walk over the buffer).
    pub fn chunks_from(&self, i: usize) -> impl Iterator<Item = ChunkRef<'_>> {
        self.all_chunks().skip(i).map(|c| ChunkRef {
            beats: c.beats,
            n_invalid: c.n_invalid,
            reading_id: c.reading_id,
            marks: None,
        })
    }

    /// The reading id of the newest chunk.
    pub(super) fn last_reading_id(&self) -> Option<&str> {
        (self.chunks > 0)
            .then(|| self.chunk_at(self.last as usize))
            .flatten()
            .map(|c| c.reading_id)
    }

    /// Starts the chunk of a reading; beats go to it through the writer.
    pub(super) fn open_chunk(&mut self, reading_id: &str) -> ChunkWriter {
        self.last = self.data.len() as u32;
        self.chunks += 1;
        put_varint(&mut self.data, reading_id.len());
        self.data.extend_from_slice(reading_id.as_bytes());
        let counts_at = self.data.len();
        self.data.extend_from_slice(&[0; 8]);
        ChunkWriter {
            enc: Encoder::default(),
            counts_at,
            beats_at: self.data.len(),
        }
    }

    /// The writer that continues the newest chunk (a reading that reaches
    /// the window again).
    pub(super) fn resume_chunk(&mut self) -> Option<ChunkWriter> {
        let c = self.chunk_at(self.last as usize)?;
        let last = beat_codec::beats(c.beats).filter_map(Result::ok).last();
        Some(ChunkWriter {
            enc: Encoder::after(last),
            counts_at: c.counts_at,
            beats_at: c.counts_at + 8,
        })
    }

    /// Buffers `beat` (valid for this window: see [`WindowBeat::new`]) in
    /// the newest chunk.
    pub(super) fn push_beat(&mut self, w: &mut ChunkWriter, beat: Beat) {
        w.enc.push(&mut self.data, beat);
        let n = (self.data.len() - w.beats_at) as u32;
        set_u32(&mut self.data, w.counts_at + 4, n);
        self.beats += 1;
    }

    /// Counts an invalid RR value in the window and its newest chunk.
    pub(super) fn add_invalid(&mut self, w: &ChunkWriter) {
        self.n_invalid = self.n_invalid.saturating_add(1);
        let n = u32_at(&self.data, w.counts_at).unwrap_or(0);
        set_u32(&mut self.data, w.counts_at, n.saturating_add(1));
    }

    /// Appends a chunk read from the changelog. Its beats are kept as they
    /// are when each is valid for the window (as this build writes them),
    /// else re-encoded without those that are not. Returns the beats
    /// buffered.
    pub(super) fn restore_chunk(&mut self, chunk: &WindowChunk) -> usize {
        let start = self.start_ms;
        let mut w = self.open_chunk(&chunk.reading_id);
        set_u32(&mut self.data, w.counts_at, chunk.n_invalid);
        self.n_invalid = self.n_invalid.saturating_add(chunk.n_invalid);
        let mut n = 0_u32;
        let all_valid = beat_codec::beats(&chunk.beats).all(|b| {
            n += 1;
            b.is_ok_and(|b| WindowBeat::new(start, b).is_some())
        });
        if all_valid {
            self.data.extend_from_slice(&chunk.beats);
            set_u32(&mut self.data, w.counts_at + 4, chunk.beats.len() as u32);
            self.beats += n;
            return n as usize;
        }
        let before = self.beats;
        for beat in beat_codec::beats(&chunk.beats).map_while(Result::ok) {
            if WindowBeat::new(start, beat).is_some() {
                self.push_beat(&mut w, beat);
            }
        }
        (self.beats - before) as usize
    }

    /// The buffered beats, in buffer order.
    pub(super) fn window_beats(&self) -> Vec<WindowBeat> {
        let mut out = Vec::with_capacity(self.beats as usize);
        for c in self.all_chunks() {
            out.extend(
                beat_codec::beats(c.beats)
                    .map_while(Result::ok)
                    .filter_map(|b| WindowBeat::new(self.start_ms, b)),
            );
        }
        out
    }

    /// The reading ids of the chunks, in order (repeats included).
    pub(super) fn reading_ids(&self) -> Vec<String> {
        self.all_chunks().map(|c| c.reading_id.to_owned()).collect()
    }

    /// Gives back the buffer's growth slack.
    pub(super) fn shrink_to_fit(&mut self) {
        self.data.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(t_ms: i64, rr_ms: i32) -> Beat {
        Beat { t_ms, rr_ms }
    }

    #[test]
    fn chunks_keep_their_beats_counts_and_ids() {
        let start = 1_790_000_100_000;
        let mut w = OpenWindow::starting(start);
        let mut a = w.open_chunk("reading-a");
        for i in 1..=3 {
            w.push_beat(&mut a, beat(start + i * 800, 800));
        }
        w.add_invalid(&a);
        let mut b = w.open_chunk("reading-b");
        w.push_beat(&mut b, beat(start + 10_000, 790));
        assert_eq!(w.last_reading_id(), Some("reading-b"));
        // The same reading again continues its chunk.
        let mut b = w.resume_chunk().expect("a chunk");
        w.push_beat(&mut b, beat(start + 10_810, 810));
        assert_eq!((w.chunks(), w.beat_count(), w.n_invalid()), (2, 5, 1));
        let c0 = w.chunk(0).expect("chunk 0");
        assert_eq!((c0.reading_id, c0.n_invalid), ("reading-a", 1));
        assert_eq!(
            beat_codec::decode(c0.beats),
            Some(vec![
                beat(start + 800, 800),
                beat(start + 1_600, 800),
                beat(start + 2_400, 800)
            ])
        );
        let c1 = w.chunk(1).expect("chunk 1");
        assert_eq!(
            beat_codec::decode(c1.beats),
            Some(vec![beat(start + 10_000, 790), beat(start + 10_810, 810)])
        );
        assert!(w.chunk(2).is_none());
        assert_eq!(w.window_beats().len(), 5);
        assert_eq!(w.reading_ids(), ["reading-a", "reading-b"]);
    }

    #[test]
    fn a_restored_chunk_is_the_written_one_and_bad_beats_are_dropped() {
        let start = 600_000;
        let mut w = OpenWindow::starting(start);
        let mut a = w.open_chunk("r1");
        w.push_beat(&mut a, beat(start + 1_000, 1_000));
        w.push_beat(&mut a, beat(start + 2_000, 1_000));
        let c = w.chunk(0).expect("chunk");
        let chunk = WindowChunk {
            beats: c.beats.to_vec(),
            n_invalid: 2,
            reading_id: c.reading_id.into(),
            marks: None,
        };
        let mut r = OpenWindow::starting(start);
        assert_eq!(r.restore_chunk(&chunk), 2);
        assert_eq!(r.chunk(0).expect("chunk").beats, chunk.beats.as_slice());
        assert_eq!((r.beat_count(), r.n_invalid()), (2, 2));
        // A beat before the window's start is not the window's.
        let odd = WindowChunk {
            beats: beat_codec::encode([beat(start - 5, 700), beat(start + 3_000, 1_000)]),
            n_invalid: 0,
            reading_id: "r2".into(),
            marks: None,
        };
        assert_eq!(r.restore_chunk(&odd), 1);
        assert_eq!(r.beat_count(), 3);
        assert_eq!(r.reading_ids(), ["r1", "r2"]);
        // As the changelog holds it: the same bytes; cut short, refused.
        let bytes = rmp_serde::to_vec(&r.chunk(0).expect("chunk")).expect("encodes");
        let back: WindowChunk = rmp_serde::from_slice(&bytes).expect("decodes");
        assert_eq!(back, chunk);
        let cut = rmp_serde::to_vec(&ChunkRef {
            beats: &[0x80],
            n_invalid: 0,
            reading_id: "r3",
            marks: None,
        })
        .expect("encodes");
        assert!(rmp_serde::from_slice::<WindowChunk>(&cut).is_err());
    }

    #[test]
    fn a_chunk_carries_the_patients_marks_only_when_given_them() {
        let mut w = OpenWindow::starting(0);
        let mut a = w.open_chunk("r1");
        w.push_beat(&mut a, beat(1_000, 1_000));
        let plain = w.chunks_from(0).next().expect("chunk");
        // Epoch milliseconds, as a watch's beats carry them.
        let marks = EventMarks {
            newest_ms: Some(1_790_000_061_000),
            closed_through_ms: Some(1_790_000_000_000),
            seen_at_ms: Some(1_790_000_062_500),
        };
        let without = rmp_serde::to_vec(&plain).expect("encodes");
        let with = rmp_serde::to_vec(&plain.with_marks(marks)).expect("encodes");
        // A chunk without marks is written as before marks existed.
        assert_eq!(
            rmp_serde::from_slice::<WindowChunk>(&without)
                .expect("decodes")
                .marks(),
            None
        );
        let back: WindowChunk = rmp_serde::from_slice(&with).expect("decodes");
        assert_eq!(back.marks(), Some(marks));
        assert_eq!(back.reading_id, "r1");
        // The marks cost one MessagePack array of three 64-bit integers.
        assert_eq!(with.len() - without.len(), 1 + 3 * 9);
    }
}
