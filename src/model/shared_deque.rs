//! A bounded-history queue whose copies share what they have in common: items live in
//! fixed-size chunks behind `Arc`s, so copying the queue costs a pointer per chunk, and a
//! copy that changes afterwards copies only the one chunk it changes. The timeline keeps a
//! copy of the view model every few seconds; with the packet log's 20,000 records in a
//! plain deque each copy touched every record, and a frame paid milliseconds for it.
//!
//! Items are added at the back and let go at the front; one can be changed in place.

use std::collections::VecDeque;
use std::sync::Arc;

/// Items per chunk: a change after a copy costs at most this many item copies.
const CHUNK: usize = 256;

/// The queue. Every chunk but the last is full; the first may have let go of its
/// first `skip` items (still held until the whole chunk goes).
#[derive(Debug, Clone)]
pub struct SharedDeque<T> {
    chunks: VecDeque<Arc<Vec<T>>>,
    /// Items of the first chunk already let go.
    skip: usize,
    len: usize,
}

impl<T> Default for SharedDeque<T> {
    fn default() -> Self {
        SharedDeque {
            chunks: VecDeque::new(),
            skip: 0,
            len: 0,
        }
    }
}

impl<T: Clone> SharedDeque<T> {
    /// Adds `item` at the back.
    pub fn push_back(&mut self, item: T) {
        if self.chunks.back().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push_back(Arc::new(Vec::with_capacity(CHUNK)));
        }
        if let Some(last) = self.chunks.back_mut() {
            Arc::make_mut(last).push(item);
            self.len += 1;
        }
    }

    /// The item at `index` (0 is the oldest), to change; a chunk shared with a copy is
    /// copied first.
    pub fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        let (chunk, at) = self.place(index)?;
        Arc::make_mut(&mut self.chunks[chunk]).get_mut(at)
    }
}

impl<T> SharedDeque<T> {
    /// Lets go of the oldest item, if any.
    pub fn pop_front(&mut self) {
        if self.len == 0 {
            return;
        }
        self.len -= 1;
        self.skip += 1;
        if self.chunks.front().is_some_and(|c| self.skip >= c.len()) {
            self.chunks.pop_front();
            self.skip = 0;
        }
    }

    /// Items held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Its chunks, to be let go of piecemeal ([`Arc::get_mut`] says which are its alone).
    pub fn into_chunks(self) -> VecDeque<Arc<Vec<T>>> {
        self.chunks
    }

    /// Chunk and place in it of item `index`.
    fn place(&self, index: usize) -> Option<(usize, usize)> {
        if index >= self.len {
            return None;
        }
        let at = self.skip + index;
        Some((at / CHUNK, at % CHUNK))
    }

    /// The item at `index` (0 is the oldest).
    pub fn get(&self, index: usize) -> Option<&T> {
        let (chunk, at) = self.place(index)?;
        self.chunks.get(chunk)?.get(at)
    }

    /// The items, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator + '_ {
        // Every index below `len` is held (the chunks' invariant above).
        (0..self.len).map(move |i| {
            let at = self.skip + i;
            &self.chunks[at / CHUNK][at % CHUNK]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_a_queue_across_chunks() {
        let mut q = SharedDeque::default();
        for i in 0..1000 {
            q.push_back(i);
        }
        for _ in 0..300 {
            q.pop_front();
        }
        assert_eq!(q.len(), 700);
        assert_eq!(q.get(0), Some(&300));
        assert_eq!(q.get(699), Some(&999));
        assert_eq!(q.get(700), None);
        assert!(q.iter().copied().eq(300..1000));
        assert!(q.iter().rev().copied().eq((300..1000).rev()));
        assert_eq!(q.iter().len(), 700);
        for _ in 0..800 {
            q.pop_front();
        }
        assert!(q.is_empty());
        assert_eq!(q.iter().next(), None);
        q.push_back(5);
        assert_eq!(q.get(0), Some(&5));
    }

    #[test]
    fn a_copy_shares_its_chunks_and_changes_only_its_own() {
        let mut original = SharedDeque::default();
        for i in 0..(CHUNK * 3 + 10) {
            original.push_back(i.to_string());
        }
        let copy = original.clone();
        assert!(original
            .chunks
            .iter()
            .zip(&copy.chunks)
            .all(|(a, b)| Arc::ptr_eq(a, b)));
        original.push_back("new".into());
        if let Some(first) = original.get_mut(0) {
            *first = "changed".into();
        }
        original.pop_front();
        assert_eq!(copy.get(0).map(String::as_str), Some("0"));
        assert_eq!(copy.len(), CHUNK * 3 + 10);
        assert_eq!(original.get(0).map(String::as_str), Some("1"));
        assert_eq!(
            original.get(original.len() - 1).map(String::as_str),
            Some("new")
        );
        // The chunks neither side changed are still one.
        assert!(Arc::ptr_eq(&original.chunks[1], &copy.chunks[1]));
        assert!(Arc::ptr_eq(&original.chunks[2], &copy.chunks[2]));
    }
}
