//! Text ↔ token ids: a byte-level BPE tokenizer built from GGUF metadata or a `tokenizer.json`.

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior, Tokenizer};

use super::error::{EngineError, Result};
use super::gguf::GgufFile;

/// GGUF `tokenizer.ggml.token_type` of control tokens (`<|im_start|>`, `<|endoftext|>`, ...).
const TOKEN_TYPE_CONTROL: i64 = 3;
/// Llama 3's pre-tokenizer: words, numbers of up to three digits, punctuation runs, newlines.
const LLAMA3_SPLIT_REGEX: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's pre-tokenizer: as Llama 3's but every digit alone.
const QWEN2_SPLIT_REGEX: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// A tokenizer plus the special tokens the engine needs to know about.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: Tokenizer,
    bos_token: Option<String>,
    eos_token: Option<String>,
    /// Tokens that end a reply: the declared end of sequence and ChatML's end of turn.
    stop_ids: Vec<u32>,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("stop_ids", &self.stop_ids)
            .finish()
    }
}

impl TextTokenizer {
    /// Rebuilds the tokenizer llama.cpp would use from `tokenizer.ggml.*` metadata.
    pub fn from_gguf(gguf: &GgufFile) -> Result<Self> {
        let model = gguf.string("tokenizer.ggml.model")?;
        if model != "gpt2" {
            return Err(EngineError::UnsupportedTokenizer(format!(
                "GGUF tokenizer model {model:?} (only byte-level BPE, \"gpt2\", is supported)"
            )));
        }
        let pre = gguf.optional_string("tokenizer.ggml.pre").unwrap_or("default");
        let pre_tokenizer = pre_tokenizer_for(pre)?;
        let tokens = gguf.string_array("tokenizer.ggml.tokens")?;
        let merges = gguf
            .string_array("tokenizer.ggml.merges")?
            .into_iter()
            .map(|merge| {
                merge.split_once(' ').map(|(left, right)| (left.to_string(), right.to_string())).ok_or_else(|| {
                    EngineError::InvalidMetadata {
                        key: "tokenizer.ggml.merges".into(),
                        reason: format!("merge {merge:?} is not two tokens separated by a space"),
                    }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let vocab: tokenizers::models::bpe::Vocab =
            tokens.iter().enumerate().map(|(id, token)| (token.to_string(), id as u32)).collect();
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            .build()
            .map_err(|e| EngineError::Tokenizer(format!("building the BPE model: {e}")))?;
        let mut inner = Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(pre_tokenizer));
        inner.with_decoder(Some(ByteLevelDecoder::default()));
        let token_types = match gguf.metadata("tokenizer.ggml.token_type") {
            Some(_) => gguf.integer_array("tokenizer.ggml.token_type")?,
            None => Vec::new(),
        };
        let specials: Vec<AddedToken> = token_types
            .iter()
            .zip(&tokens)
            .filter(|(kind, _)| **kind == TOKEN_TYPE_CONTROL)
            .map(|(_, token)| AddedToken::from(token.to_string(), true))
            .collect();
        inner
            .add_special_tokens(specials)
            .map_err(|e| EngineError::Tokenizer(format!("adding special tokens: {e}")))?;
        let token_at = |key: &str| gguf.optional_unsigned(key).and_then(|id| tokens.get(id)).map(|t| t.to_string());
        let bos_token = token_at("tokenizer.ggml.bos_token_id");
        let eos_token = token_at("tokenizer.ggml.eos_token_id");
        Ok(Self::assemble(inner, bos_token, eos_token))
    }

    /// A Hugging Face `tokenizer.json`, with the special tokens named in `tokenizer_config.json`.
    pub fn from_file(path: &Path, bos_token: Option<String>, eos_token: Option<String>) -> Result<Self> {
        let inner =
            Tokenizer::from_file(path).map_err(|e| EngineError::Tokenizer(format!("{}: {e}", path.display())))?;
        Ok(Self::assemble(inner, bos_token, eos_token))
    }

    fn assemble(inner: Tokenizer, bos_token: Option<String>, eos_token: Option<String>) -> Self {
        let mut stop_ids: Vec<u32> = Vec::new();
        for token in eos_token.iter().map(String::as_str).chain(["<|im_end|>", "<|endoftext|>", "<|eot_id|>"]) {
            if let Some(id) = inner.token_to_id(token) {
                if !stop_ids.contains(&id) {
                    stop_ids.push(id);
                }
            }
        }
        TextTokenizer { inner, bos_token, eos_token, stop_ids }
    }

    /// Token ids of `text`; special tokens written in the text (`<|im_start|>`) become their ids.
    /// No beginning-of-sequence token is added: chat templates write it themselves.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self.inner.encode(text, false).map_err(|e| EngineError::Tokenizer(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.inner.decode(ids, skip_special_tokens).map_err(|e| EngineError::Tokenizer(e.to_string()))
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn bos_token(&self) -> Option<&str> {
        self.bos_token.as_deref()
    }

    pub fn eos_token(&self) -> Option<&str> {
        self.eos_token.as_deref()
    }

    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    /// The ids of "0".."9"; scoring needs each digit to be one token.
    pub fn digit_ids(&self) -> Result<[u32; 10]> {
        let mut ids = [0u32; 10];
        for (digit, slot) in ids.iter_mut().enumerate() {
            let encoded = self.encode(&digit.to_string())?;
            match encoded.as_slice() {
                [id] => *slot = *id,
                _ => return Err(EngineError::DigitNotSingleToken { digit: digit as u8 }),
            }
        }
        Ok(ids)
    }
}

/// The pre-tokenizer llama.cpp selects for a `tokenizer.ggml.pre` name.
fn pre_tokenizer_for(pre: &str) -> Result<PreTokenizerWrapper> {
    let byte_level_with_regex = ByteLevel::new(false, true, true);
    let byte_level_only = ByteLevel::new(false, true, false);
    let split = |regex: &str| -> Result<PreTokenizerWrapper> {
        let split = Split::new(SplitPattern::Regex(regex.to_string()), SplitDelimiterBehavior::Isolated, false)
            .map_err(|e| EngineError::Tokenizer(format!("pre-tokenizer regex: {e}")))?;
        Ok(split.into())
    };
    let wrapper = match pre {
        "default" | "gpt-2" | "gpt2" => byte_level_with_regex.into(),
        // SmolLM: every digit alone, then GPT-2's byte-level split.
        "smollm" => Sequence::new(vec![Digits::new(true).into(), byte_level_with_regex.into()]).into(),
        "llama-bpe" | "llama3" | "smaug-bpe" => {
            Sequence::new(vec![split(LLAMA3_SPLIT_REGEX)?, byte_level_only.into()]).into()
        }
        "qwen2" => Sequence::new(vec![split(QWEN2_SPLIT_REGEX)?, byte_level_only.into()]).into(),
        other => {
            return Err(EngineError::UnsupportedTokenizer(format!(
                "GGUF pre-tokenizer {other:?} (supported: default, gpt-2, smollm, llama-bpe, qwen2)"
            )))
        }
    };
    Ok(wrapper)
}
