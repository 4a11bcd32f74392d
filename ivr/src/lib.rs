//! loket-ivr: declarative IVR flows, their validation and a pure interpreter, the prompt catalog
//! and number speaking. Empty until the IVR issue; keypad identification will use
//! `loket_be::NationalRegisterNumber`.
