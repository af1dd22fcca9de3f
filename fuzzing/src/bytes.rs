//! Reading structured choices out of fuzz input: each read takes what it
//! needs and yields zero once the input is spent, so every input is a
//! valid (if short) program.

use cutover_core::Key;

/// The unread rest of an input.
pub struct Input<'a> {
    rest: &'a [u8],
}

/// Keys where decisions change: the ends of the range, zero, and the
/// neighbourhood of a 1,000 ms window.
const INTERESTING_KEYS: [i64; 12] = [
    i64::MIN,
    i64::MIN + 1,
    -1,
    0,
    1,
    999,
    1_000,
    1_001,
    5_000,
    1 << 40,
    i64::MAX - 1,
    i64::MAX,
];

impl<'a> Input<'a> {
    /// All of `data`, unread.
    pub fn new(data: &'a [u8]) -> Self {
        Input { rest: data }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next byte (0 once spent).
    pub fn byte(&mut self) -> u8 {
        match self.rest.split_first() {
            Some((&b, rest)) => {
                self.rest = rest;
                b
            }
            None => 0,
        }
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u8) -> u8 {
        self.byte() % n.max(1)
    }

    /// A coin.
    pub fn flag(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    /// Eight bytes as a number.
    pub fn u64(&mut self) -> u64 {
        let mut value = [0u8; 8];
        for b in &mut value {
            *b = self.byte();
        }
        u64::from_le_bytes(value)
    }

    /// A key: mostly near where decisions change, sometimes any.
    pub fn key(&mut self) -> Key {
        let choice = self.byte();
        match choice % 4 {
            0 => Key(self.u64() as i64),
            1 => Key(i64::from(self.byte()) * 100),
            _ => Key(INTERESTING_KEYS[usize::from(choice / 4) % INTERESTING_KEYS.len()]),
        }
    }
}
