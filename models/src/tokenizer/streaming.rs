//! Streaming detokenization: text is released only once it is complete UTF-8, so a character
//! whose bytes span several byte-level tokens (emoji, CJK) is never printed half-way. The
//! prefix/read offset scheme is the one text-generation-inference's `decode_token` uses; it
//! also keeps the spacing that decoding tokens one at a time would lose.

use tokenizers::Tokenizer;

use super::TokenizerError;

/// Turns token ids, pushed one at a time, into text fragments.
#[derive(Debug)]
pub struct StreamingDecoder<'a> {
    tokenizer: &'a Tokenizer,
    skip_special: bool,
    ids: Vec<u32>,
    /// Start of the window decoded for context.
    prefix_offset: usize,
    /// End of the text already emitted.
    read_offset: usize,
}

impl<'a> StreamingDecoder<'a> {
    /// A decoder over `tokenizer`; `skip_special` drops special tokens from the text.
    pub fn new(tokenizer: &'a Tokenizer, skip_special: bool) -> Self {
        StreamingDecoder { tokenizer, skip_special, ids: Vec::new(), prefix_offset: 0, read_offset: 0 }
    }

    fn decode(&self, ids: &[u32]) -> Result<String, TokenizerError> {
        self.tokenizer
            .decode(ids, self.skip_special)
            .map_err(|e| TokenizerError::Tokenizers { file: "<decode>".into(), message: e.to_string() })
    }

    /// Adds `id`; returns the newly completed text, or `None` while a character is incomplete.
    pub fn push(&mut self, id: u32) -> Result<Option<String>, TokenizerError> {
        self.ids.push(id);
        let prefix = self.decode(&self.ids[self.prefix_offset..self.read_offset])?;
        let text = self.decode(&self.ids[self.prefix_offset..])?;
        if text.len() > prefix.len() && !text.ends_with('\u{FFFD}') && text.is_char_boundary(prefix.len()) {
            let fresh = text[prefix.len()..].to_string();
            self.prefix_offset = self.read_offset;
            self.read_offset = self.ids.len();
            Ok(Some(fresh))
        } else {
            Ok(None)
        }
    }

    /// Whatever is still held back (an incomplete character decodes as U+FFFD); call at the end.
    pub fn finish(&mut self) -> Result<Option<String>, TokenizerError> {
        let prefix = self.decode(&self.ids[self.prefix_offset..self.read_offset])?;
        let text = self.decode(&self.ids[self.prefix_offset..])?;
        self.prefix_offset = self.ids.len();
        self.read_offset = self.ids.len();
        if text.len() > prefix.len() && text.is_char_boundary(prefix.len()) {
            Ok(Some(text[prefix.len()..].to_string()))
        } else {
            Ok(None)
        }
    }
}
