//! DTMF digits, as RFC 4733 telephone-events (`rfc4733`) and as tones in the audio (`inband`).

pub mod inband;
pub mod rfc4733;

/// One of the sixteen DTMF keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Digit {
    D0,
    D1,
    D2,
    D3,
    D4,
    D5,
    D6,
    D7,
    D8,
    D9,
    Star,
    Pound,
    A,
    B,
    C,
    D,
}

impl Digit {
    /// All sixteen, in RFC 4733 event-code order.
    pub const ALL: [Digit; 16] = [
        Digit::D0,
        Digit::D1,
        Digit::D2,
        Digit::D3,
        Digit::D4,
        Digit::D5,
        Digit::D6,
        Digit::D7,
        Digit::D8,
        Digit::D9,
        Digit::Star,
        Digit::Pound,
        Digit::A,
        Digit::B,
        Digit::C,
        Digit::D,
    ];

    /// The RFC 4733 §3.2 event code (0–9, * = 10, # = 11, A–D = 12–15).
    pub fn event_code(self) -> u8 {
        self as u8
    }

    /// The digit of an event code, or `None` for the other events (flash, fax tones, ...).
    pub fn from_event_code(code: u8) -> Option<Digit> {
        Digit::ALL.get(usize::from(code)).copied()
    }

    /// The key's character: '0'–'9', '*', '#', 'A'–'D'.
    pub fn as_char(self) -> char {
        b"0123456789*#ABCD"[self as usize] as char
    }

    /// The digit of a key character (case-insensitive letters), as IVR flows and tests spell them.
    pub fn from_char(key: char) -> Option<Digit> {
        let index = "0123456789*#ABCD".find(key.to_ascii_uppercase())?;
        Digit::ALL.get(index).copied()
    }

    /// The (low, high) tone pair in Hz (ITU-T Q.23): the row of the keypad, then the column.
    pub fn frequencies(self) -> (f32, f32) {
        let (row, column) = KEYPAD_POSITION[self as usize];
        (inband::ROW_FREQUENCIES[row], inband::COLUMN_FREQUENCIES[column])
    }
}

/// (row, column) on the 4×4 keypad, in event-code order.
const KEYPAD_POSITION: [(usize, usize); 16] = [
    (3, 1), // 0
    (0, 0), // 1
    (0, 1), // 2
    (0, 2), // 3
    (1, 0), // 4
    (1, 1), // 5
    (1, 2), // 6
    (2, 0), // 7
    (2, 1), // 8
    (2, 2), // 9
    (3, 0), // *
    (3, 2), // #
    (0, 3), // A
    (1, 3), // B
    (2, 3), // C
    (3, 3), // D
];

/// The digit at a keypad position.
fn digit_at(row: usize, column: usize) -> Option<Digit> {
    let index = KEYPAD_POSITION.iter().position(|&position| position == (row, column))?;
    Digit::ALL.get(index).copied()
}
