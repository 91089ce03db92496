//! Loading a model with its tokenizer and chat template from a GGUF file or a Hugging Face folder.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use super::chat_template::ChatTemplate;
use super::error::{EngineError, Result};
use super::gguf::GgufFile;
use super::hf::HfFolder;
use super::model::LlamaModel;
use super::tokenizer::TextTokenizer;

/// Where the model runs: f32 on the CPU, bf16 on a CUDA GPU (by its ordinal). Written `cpu`,
/// `cuda` (= `cuda:0`) or `cuda:N`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DeviceKind {
    #[default]
    Cpu,
    Cuda(u32),
}

/// The highest CUDA ordinal a device may name.
pub const MAX_CUDA_ORDINAL: u32 = 63;

impl DeviceKind {
    pub fn device_and_dtype(self) -> Result<(Device, DType)> {
        match self {
            DeviceKind::Cpu => Ok((Device::Cpu, DType::F32)),
            DeviceKind::Cuda(ordinal) => {
                let device =
                    Device::new_cuda(ordinal as usize).map_err(|e| EngineError::CudaUnavailable(e.to_string()))?;
                Ok((device, DType::BF16))
            }
        }
    }
}

impl std::fmt::Display for DeviceKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceKind::Cpu => formatter.write_str("cpu"),
            DeviceKind::Cuda(ordinal) => write!(formatter, "cuda:{ordinal}"),
        }
    }
}

impl std::str::FromStr for DeviceKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let unknown = || format!("unknown device {text:?} (cpu, cuda or cuda:N with N ≤ {MAX_CUDA_ORDINAL})");
        match text.trim() {
            "cpu" => Ok(DeviceKind::Cpu),
            "cuda" | "gpu" => Ok(DeviceKind::Cuda(0)),
            other => {
                let ordinal = other.strip_prefix("cuda:").and_then(|n| n.parse::<u32>().ok()).ok_or_else(unknown)?;
                if ordinal > MAX_CUDA_ORDINAL {
                    return Err(unknown());
                }
                Ok(DeviceKind::Cuda(ordinal))
            }
        }
    }
}

impl TryFrom<String> for DeviceKind {
    type Error = String;

    fn try_from(text: String) -> std::result::Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<DeviceKind> for String {
    fn from(device: DeviceKind) -> String {
        device.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_are_written_and_read_alike() {
        for (text, device) in [("cpu", DeviceKind::Cpu), ("cuda", DeviceKind::Cuda(0)), ("cuda:3", DeviceKind::Cuda(3))]
        {
            assert_eq!(text.parse::<DeviceKind>().unwrap(), device);
        }
        assert_eq!(DeviceKind::Cuda(2).to_string(), "cuda:2");
        for bad in ["tpu", "cuda:", "cuda:-1", "cuda:64", "cuda:x"] {
            assert!(bad.parse::<DeviceKind>().unwrap_err().contains("cpu, cuda or cuda:N"), "{bad}");
        }
    }
}

/// A model ready to run.
#[derive(Debug)]
pub struct LoadedModel {
    pub model: LlamaModel,
    pub tokenizer: TextTokenizer,
    pub chat_template: Option<ChatTemplate>,
    pub source: PathBuf,
    /// The model's id as its files name it (a GGUF's `general.*`, a folder's name); adapters
    /// record it as their base model unless the engine is told a better one.
    pub model_id: Option<String>,
}

impl LoadedModel {
    pub fn chat_template(&self) -> Result<&ChatTemplate> {
        self.chat_template.as_ref().ok_or(EngineError::MissingChatTemplate)
    }
}

/// Loads a `.gguf` file (weights dequantized) or a Hugging Face model folder.
pub fn load_model(path: &Path, device: DeviceKind) -> Result<LoadedModel> {
    if !path.exists() {
        return Err(EngineError::ModelNotFound(path.to_path_buf()));
    }
    let (device, dtype) = device.device_and_dtype()?;
    if path.is_dir() {
        load_folder(path, dtype, &device)
    } else {
        load_gguf(path, dtype, &device)
    }
}

/// The chat template of a `.gguf` file or a Hugging Face model folder, without its weights (to
/// render prompts for a server that runs the model).
pub fn load_chat_template(path: &Path) -> Result<ChatTemplate> {
    if !path.exists() {
        return Err(EngineError::ModelNotFound(path.to_path_buf()));
    }
    let template = if path.is_dir() {
        let folder = HfFolder::open(path)?;
        let tokenizer =
            TextTokenizer::from_file(&folder.tokenizer_file, folder.bos_token.clone(), folder.eos_token.clone())?;
        folder
            .chat_template
            .as_deref()
            .map(|source| ChatTemplate::new(source, tokenizer.bos_token(), tokenizer.eos_token()))
    } else {
        let gguf = GgufFile::open(path)?;
        let tokenizer = TextTokenizer::from_gguf(&gguf)?;
        gguf.optional_string("tokenizer.chat_template")
            .map(|source| ChatTemplate::new(source, tokenizer.bos_token(), tokenizer.eos_token()))
    };
    template.transpose()?.ok_or(EngineError::MissingChatTemplate)
}

fn load_gguf(path: &Path, dtype: DType, device: &Device) -> Result<LoadedModel> {
    let gguf = GgufFile::open(path)?;
    let config = gguf.config()?;
    let tokenizer = TextTokenizer::from_gguf(&gguf)?;
    let chat_template = gguf
        .optional_string("tokenizer.chat_template")
        .map(|source| ChatTemplate::new(source, tokenizer.bos_token(), tokenizer.eos_token()))
        .transpose()?;
    let weights = gguf.load_weights(&config, dtype, device)?;
    let model = LlamaModel::new(config, VarBuilder::from_tensors(weights, dtype, device))?;
    let model_id = gguf.model_id();
    Ok(LoadedModel { model, tokenizer, chat_template, source: gguf.path().to_path_buf(), model_id })
}

fn load_folder(path: &Path, dtype: DType, device: &Device) -> Result<LoadedModel> {
    let folder = HfFolder::open(path)?;
    let tokenizer =
        TextTokenizer::from_file(&folder.tokenizer_file, folder.bos_token.clone(), folder.eos_token.clone())?;
    let chat_template = folder
        .chat_template
        .as_deref()
        .map(|source| ChatTemplate::new(source, tokenizer.bos_token(), tokenizer.eos_token()))
        .transpose()?;
    let model = LlamaModel::new(folder.config.clone(), folder.weights(dtype, device)?)?;
    let model_id = folder.path.file_name().map(|name| name.to_string_lossy().into_owned());
    Ok(LoadedModel { model, tokenizer, chat_template, source: folder.path, model_id })
}
