//! The models runs can use: the catalogue shipped in `data/models/catalog.toml` (named models with
//! where they come from, checksum, size and licence; `scripts/fetch-model.sh NAME` installs one),
//! and any other GGUF file or Hugging Face folder in the models folder. A run names a model; the
//! command line may also give a path.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use shared::{ModelKind, ModelListing};

/// The catalogue, embedded so that the binary knows its models wherever it runs.
const CATALOG_TOML: &str = include_str!("../../data/models/catalog.toml");

/// The model of runs and commands that name none.
pub const DEFAULT_MODEL_NAME: &str = "smollm2-135m";

/// Where models are installed unless `--models-dir` says otherwise.
pub const DEFAULT_MODELS_DIR: &str = "models";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {name:?} is not installed in {}: run scripts/fetch-model.sh {name}", dir.display())]
    NotInstalled { name: String, dir: PathBuf },
    #[error("unknown model {spec:?}: not in the catalogue ({known}), not a model in {}, not a path", dir.display())]
    Unknown { spec: String, known: String, dir: PathBuf },
    #[error("the model catalogue is broken: {0}")]
    Catalog(String),
}

/// One model of the catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogModel {
    pub name: String,
    pub title: String,
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub licence: String,
    pub licence_source: String,
    pub upstream: String,
    pub architecture: String,
    pub notes: String,
    pub packages: Vec<String>,
    pub members: Vec<String>,
}

#[derive(Deserialize)]
struct CatalogFile {
    model: Vec<CatalogModel>,
}

/// The shipped catalogue.
pub fn catalog() -> Result<Vec<CatalogModel>, ModelError> {
    let file: CatalogFile = toml::from_str(CATALOG_TOML).map_err(|e| ModelError::Catalog(e.to_string()))?;
    Ok(file.model)
}

/// The Hugging Face id of a catalogue model's file (what adapters trained on it record as their
/// base model), by the file's name.
pub fn upstream_id_of(path: &Path) -> Option<String> {
    let file_name = path.file_name()?.to_str()?;
    catalog().ok()?.into_iter().find(|model| model.file == file_name).map(|model| model.upstream)
}

/// The catalogue and the models folder.
#[derive(Debug, Clone)]
pub struct ModelRegistry {
    models_dir: PathBuf,
    catalog: Vec<CatalogModel>,
}

impl ModelRegistry {
    pub fn new(models_dir: impl Into<PathBuf>) -> Result<Self, ModelError> {
        Ok(ModelRegistry { models_dir: models_dir.into(), catalog: catalog()? })
    }

    pub fn models_dir(&self) -> &Path {
        &self.models_dir
    }

    pub fn catalog(&self) -> &[CatalogModel] {
        &self.catalog
    }

    /// Every catalogue model (installed or not) and every other model in the models folder.
    pub fn list(&self) -> Vec<ModelListing> {
        let mut listings: Vec<ModelListing> = self
            .catalog
            .iter()
            .map(|model| {
                let path = self.models_dir.join(&model.file);
                let installed = std::fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() == model.bytes);
                ModelListing {
                    name: model.name.clone(),
                    title: model.title.clone(),
                    kind: ModelKind::Catalogue,
                    installed,
                    bytes: Some(model.bytes),
                    licence: Some(model.licence.clone()),
                    licence_source: Some(model.licence_source.clone()),
                    upstream: Some(model.upstream.clone()),
                    architecture: Some(model.architecture.clone()),
                    notes: Some(model.notes.clone()),
                    default: model.name == DEFAULT_MODEL_NAME,
                }
            })
            .collect();
        for name in self.local_models() {
            let path = self.models_dir.join(&name);
            let bytes = std::fs::metadata(&path).ok().filter(|m| m.is_file()).map(|m| m.len());
            listings.push(ModelListing {
                name: name.clone(),
                title: name,
                kind: ModelKind::Local,
                installed: true,
                bytes,
                licence: None,
                licence_source: None,
                upstream: None,
                architecture: None,
                notes: None,
                default: false,
            });
        }
        listings
    }

    /// GGUF files and Hugging Face folders (with a `config.json`) in the models folder that the
    /// catalogue does not name, by file or folder name, sorted.
    fn local_models(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.models_dir) else { return Vec::new() };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|entry| {
                let name = entry.file_name().to_str()?.to_string();
                if name.starts_with('.') || self.catalog.iter().any(|m| m.file == name) {
                    return None;
                }
                let path = entry.path();
                let is_model = (path.is_file() && name.ends_with(".gguf")) || path.join("config.json").is_file();
                is_model.then_some(name)
            })
            .collect();
        names.sort();
        names
    }

    /// The file or folder of a model named by the catalogue or found in the models folder.
    pub fn resolve_name(&self, name: &str) -> Result<PathBuf, ModelError> {
        if let Some(model) = self.catalog.iter().find(|m| m.name == name) {
            let path = self.models_dir.join(&model.file);
            if !path.is_file() {
                return Err(ModelError::NotInstalled { name: name.to_string(), dir: self.models_dir.clone() });
            }
            return Ok(path);
        }
        if self.local_models().iter().any(|local| local == name) {
            return Ok(self.models_dir.join(name));
        }
        Err(self.unknown(name))
    }

    /// As [`ModelRegistry::resolve_name`], or else an existing path (the command line's way).
    pub fn resolve(&self, spec: &str) -> Result<PathBuf, ModelError> {
        match self.resolve_name(spec) {
            Err(ModelError::Unknown { .. }) if Path::new(spec).exists() => Ok(PathBuf::from(spec)),
            other => other,
        }
    }

    fn unknown(&self, spec: &str) -> ModelError {
        ModelError::Unknown {
            spec: spec.to_string(),
            known: self.catalog.iter().map(|m| m.name.as_str()).collect::<Vec<_>>().join(", "),
            dir: self.models_dir.clone(),
        }
    }
}

/// The models a server or command can use, and the one of runs that name none.
#[derive(Debug, Clone)]
pub struct ModelSource {
    pub registry: ModelRegistry,
    /// A catalogue name, a model of the folder, or a path.
    pub default: String,
    /// Engines on the CPU run their projections as bf16 GEMMs (`--bf16`: AMX tiles or AVX-512
    /// BF16) instead of f32.
    pub bf16_projections: bool,
    /// The fused CPU kernels forced on or off (`--cpu-kernels`); `None`: the build's choice.
    pub cpu_kernels: Option<bool>,
    /// Where engines run when a run names no device (`--device`).
    pub device: crate::engine::DeviceKind,
    /// The remote engines a run from a request may name (`serve --engines FILE`).
    pub remote_engines: Vec<shared::RemoteEngineListing>,
}

impl ModelSource {
    pub fn new(models_dir: impl Into<PathBuf>, default: impl Into<String>) -> Result<Self, ModelError> {
        Ok(ModelSource {
            registry: ModelRegistry::new(models_dir)?,
            default: default.into(),
            bf16_projections: false,
            cpu_kernels: None,
            device: crate::engine::DeviceKind::Cpu,
            remote_engines: Vec::new(),
        })
    }

    pub fn with_remote_engines(self, remote_engines: Vec<shared::RemoteEngineListing>) -> Self {
        ModelSource { remote_engines, ..self }
    }

    pub fn with_bf16_projections(self, bf16_projections: bool) -> Self {
        ModelSource { bf16_projections, ..self }
    }

    pub fn with_cpu_kernels(self, cpu_kernels: Option<bool>) -> Self {
        ModelSource { cpu_kernels, ..self }
    }

    pub fn with_device(self, device: crate::engine::DeviceKind) -> Self {
        ModelSource { device, ..self }
    }

    /// How the projections of an engine on `device` compute: `f32`, the bf16 kernel of this CPU
    /// (`bf16-amx`, `bf16-avx512`, `bf16-portable`), or `bf16-cuda`. A run logs it each time it
    /// executes, so a run resumed with other numerics says so.
    pub fn projections(&self, device: crate::engine::DeviceKind) -> &'static str {
        match device {
            crate::engine::DeviceKind::Cuda(_) => "bf16-cuda",
            crate::engine::DeviceKind::Cpu if self.bf16_projections => crate::engine::amx::kernel().name(),
            crate::engine::DeviceKind::Cpu => "f32",
        }
    }

    /// How an engine for the model at `path` is started: the one place both the server's runner
    /// and the CLI get their engine settings from.
    pub fn engine_options(&self, path: &std::path::Path) -> crate::engine::EngineOptions {
        crate::engine::EngineOptions {
            device: self.device,
            bf16_projections: self.bf16_projections,
            cpu_kernels: self.cpu_kernels,
            base_model_id: upstream_id_of(path),
            ..crate::engine::EngineOptions::new(path)
        }
    }

    /// The file or folder of `spec` (a run's `model`), or of the default model.
    pub fn path_for(&self, spec: Option<&str>) -> Result<PathBuf, ModelError> {
        self.registry.resolve(spec.unwrap_or(&self.default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_names_the_three_models_with_checksums_and_parts() {
        let catalog = catalog().unwrap();
        let names: Vec<&str> = catalog.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]);
        for model in &catalog {
            assert_eq!(model.sha256.len(), 64, "{}", model.name);
            assert_eq!(model.packages.len(), model.members.len(), "{}", model.name);
            assert_eq!(model.licence, "Apache-2.0");
        }
        // The science issue's pinned figures.
        let qwen = &catalog[1];
        assert_eq!((qwen.bytes, qwen.packages.len()), (491_400_064, 6));
        assert_eq!(catalog[2].bytes, 1_117_320_768);
        assert_eq!(catalog[2].packages.len(), 22);
        assert!(catalog[2].members[21].ends_with("part22.bin"));
    }

    #[test]
    fn names_resolve_to_installed_files_and_unknown_names_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let registry = ModelRegistry::new(dir.path()).unwrap();
        let error = registry.resolve("qwen2.5-coder-0.5b").unwrap_err().to_string();
        assert!(error.contains("scripts/fetch-model.sh qwen2.5-coder-0.5b"), "{error}");
        let error = registry.resolve("gpt-5").unwrap_err().to_string();
        assert!(error.contains("smollm2-135m, qwen2.5-coder-0.5b, qwen2.5-coder-1.5b"), "{error}");

        std::fs::write(dir.path().join("mine.gguf"), b"GGUF").unwrap();
        std::fs::create_dir(dir.path().join("hf-model")).unwrap();
        std::fs::write(dir.path().join("hf-model/config.json"), b"{}").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"").unwrap();
        assert_eq!(registry.resolve("mine.gguf").unwrap(), dir.path().join("mine.gguf"));
        let listed: Vec<(String, bool)> = registry.list().into_iter().map(|m| (m.name, m.installed)).collect();
        assert_eq!(
            listed,
            [
                ("smollm2-135m".to_string(), false),
                ("qwen2.5-coder-0.5b".to_string(), false),
                ("qwen2.5-coder-1.5b".to_string(), false),
                ("hf-model".to_string(), true),
                ("mine.gguf".to_string(), true),
            ]
        );
        // A path still works from the command line.
        let outside = dir.path().join("hf-model/config.json");
        assert_eq!(registry.resolve(outside.to_str().unwrap()).unwrap(), outside);
    }
}
