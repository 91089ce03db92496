//! `culturespa models`: the catalogue and what is installed.

use std::path::Path;

use culturespa::models::ModelRegistry;

use super::Globals;

#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    /// One JSON object per model instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(globals: &Globals, args: ModelsArgs) -> anyhow::Result<()> {
    let registry = ModelRegistry::new(&globals.models_dir)?;
    let listings = registry.list();
    if args.json {
        for listing in &listings {
            println!("{}", serde_json::to_string(listing)?);
        }
    } else {
        print!("{}", models_table(&listings, registry.models_dir()));
    }
    Ok(())
}

/// The catalogue and the models folder as a table.
fn models_table(listings: &[shared::ModelListing], models_dir: &Path) -> String {
    let mut table = format!("{:<24} {:<10} {:>9}  {:<11} {}\n", "NAME", "INSTALLED", "MB", "LICENCE", "MODEL");
    for listing in listings {
        let installed = if listing.installed { "yes" } else { "no" };
        let megabytes = listing.bytes.map(|b| format!("{:.1}", b as f64 / 1e6)).unwrap_or_default();
        let title = if listing.default { format!("{} (default)", listing.title) } else { listing.title.clone() };
        table.push_str(&format!(
            "{:<24} {installed:<10} {megabytes:>9}  {:<11} {title}\n",
            listing.name,
            listing.licence.as_deref().unwrap_or("?"),
        ));
    }
    table.push_str(&format!("models folder: {}; install one with scripts/fetch-model.sh NAME\n", models_dir.display()));
    table
}
