//! Prints the prompt catalog as `id<TAB>language<TAB>text` lines, for `prompts/generate.sh`.
//! With no argument it reads the demo configuration; otherwise the file given.

use std::process::ExitCode;

use loket_ivr::{DEMO, Ivr};

fn main() -> ExitCode {
    let (name, text) = match std::env::args().nth(1) {
        Some(path) => match std::fs::read_to_string(&path) {
            Ok(text) => (path, text),
            Err(error) => {
                eprintln!("{path}: {error}");
                return ExitCode::FAILURE;
            }
        },
        None => ("ivr/demo.toml".to_owned(), DEMO.to_owned()),
    };
    match Ivr::parse(&name, &text) {
        Ok(ivr) => {
            for (id, language, text) in ivr.prompt_texts() {
                println!("{id}\t{}\t{text}", language.code());
            }
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for error in errors {
                eprintln!("{error}");
            }
            ExitCode::FAILURE
        }
    }
}
