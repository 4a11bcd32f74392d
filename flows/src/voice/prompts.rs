//! The recordings of a flow's prompts, read once at start and encoded for the media engine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use loket_ivr::{Ivr, Language, PromptRef};
use loket_media::playback::{Prompt, PromptError};

#[derive(Debug, thiserror::Error)]
pub enum PromptsError {
    #[error("{path}: {source}")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Format { path: PathBuf, source: PromptError },
}

/// Every prompt of the catalog in NL, FR and EN, and the music on hold.
pub struct Prompts {
    prompts: HashMap<(Arc<str>, Language), Prompt>,
    music: Prompt,
}

impl Prompts {
    /// Reads `<dir>/<language>/<id>.wav` for each prompt of `ivr` and `<dir>/music/hold.wav`;
    /// the first missing or unplayable file is the error.
    pub fn load(dir: &Path, ivr: &Ivr) -> Result<Prompts, PromptsError> {
        let mut prompts = HashMap::new();
        for (id, language, _) in ivr.prompt_texts() {
            let path = dir.join(language.code()).join(format!("{id}.wav"));
            prompts.insert((Arc::from(id), language), read(&path)?);
        }
        Ok(Prompts { prompts, music: read(&dir.join("music").join("hold.wav"))? })
    }

    /// The recordings of `refs`, in order; a prompt missing from the catalog (which validation
    /// rules out) is skipped rather than silencing the call.
    pub fn playlist(&self, refs: &[PromptRef]) -> Vec<Prompt> {
        refs.iter().filter_map(|prompt| self.prompts.get(&(prompt.id.clone(), prompt.language)).cloned()).collect()
    }

    pub fn music(&self) -> Prompt {
        self.music.clone()
    }
}

fn read(path: &Path) -> Result<Prompt, PromptsError> {
    let file = std::fs::File::open(path).map_err(|source| PromptsError::Open { path: path.to_owned(), source })?;
    Prompt::from_wav(std::io::BufReader::new(file))
        .map_err(|source| PromptsError::Format { path: path.to_owned(), source })
}
