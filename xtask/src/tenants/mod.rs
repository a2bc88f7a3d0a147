//! `cargo xtask tenants import|list|validate`: import the tenant files from the public source
//! data, list them and validate them (`tenants seed` is the deployer's).

mod import;
pub mod validate;

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use represent::tenant::TenantFile;
use serde::Serialize;

/// How `tenants list` prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Text,
    /// A JSON array for scripts.
    Json,
}

#[derive(Debug, clap::Subcommand)]
pub enum TenantsCommand {
    /// Regenerate tenants/ from the source data (deterministic: same input, same bytes). Run it
    /// after the source data changes, then commit the result.
    Import {
        /// Directory holding legislators-current.yaml, legislators-district-offices.yaml,
        /// county_fips_master.csv and state_fips_master.csv (default: ../shared/data beside the
        /// project).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// List the tenants: id, name, counties, seats and vacancies.
    List {
        /// `text` for people, `json` for scripts.
        #[arg(long, value_enum, default_value = "text")]
        output: OutputFormat,
    },
    /// Validate every tenant file and the index; exits non-zero listing every problem.
    Validate,
}

pub fn run(cmd: TenantsCommand, project_root: &Path) -> anyhow::Result<()> {
    let tenants_dir = project_root.join("tenants");
    match cmd {
        TenantsCommand::Import { data_dir } => {
            let data_dir = data_dir.unwrap_or_else(|| project_root.join("../shared/data"));
            let tenants = import::import(&data_dir, &tenants_dir)?;
            deployer::cli::output::outln!(
                "imported {} tenants into {}",
                tenants.len(),
                tenants_dir.display()
            )?;
        }
        TenantsCommand::List { output } => {
            let rows = list(&tenants_dir)?;
            deployer::cli::output::write_stdout(render_list(&rows, output)?.as_bytes())?;
        }
        TenantsCommand::Validate => {
            let checked = validate::check_dir(&tenants_dir);
            if !checked.problems.is_empty() {
                bail!(
                    "{} problems in {}:\n  - {}",
                    checked.problems.len(),
                    tenants_dir.display(),
                    checked.problems.join("\n  - ")
                );
            }
            deployer::cli::output::outln!("{} tenant files are valid", checked.tenants.len())?;
        }
    }
    Ok(())
}

/// One line of `tenants list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListRow {
    pub id: String,
    pub name: String,
    pub counties: usize,
    pub senators: usize,
    pub seats: usize,
    pub vacant_seats: usize,
}

impl From<&TenantFile> for ListRow {
    fn from(t: &TenantFile) -> Self {
        Self {
            id: t.id.clone(),
            name: t.name.clone(),
            counties: t.counties.len(),
            senators: t.senators.len(),
            seats: t.seats.len(),
            vacant_seats: t
                .seats
                .iter()
                .filter(|s| s.representative.is_none())
                .count(),
        }
    }
}

/// The tenants of `dir`, sorted by id. Files that do not parse are an error, pointing at
/// `tenants validate` for the full list of problems.
fn list(dir: &Path) -> anyhow::Result<Vec<ListRow>> {
    let checked = validate::check_dir(dir);
    if let Some(unreadable) = checked.unreadable.first() {
        bail!("{unreadable} (run `cargo xtask tenants validate` for every problem)");
    }
    let mut rows: Vec<ListRow> = checked.tenants.iter().map(ListRow::from).collect();
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(rows)
}

fn render_list(rows: &[ListRow], output: OutputFormat) -> anyhow::Result<String> {
    Ok(match output {
        OutputFormat::Json => {
            let mut json =
                serde_json::to_string_pretty(rows).context("failed to render the list")?;
            json.push('\n');
            json
        }
        OutputFormat::Text => {
            let width = rows
                .iter()
                .map(|r| r.name.chars().count())
                .max()
                .unwrap_or(0)
                .max(4);
            let mut text = format!(
                "{:<4} {:<width$} {:>8} {:>8} {:>5} {:>6}\n",
                "ID", "NAME", "COUNTIES", "SENATORS", "SEATS", "VACANT"
            );
            for r in rows {
                text.push_str(&format!(
                    "{:<4} {:<width$} {:>8} {:>8} {:>5} {:>6}\n",
                    r.id, r.name, r.counties, r.senators, r.seats, r.vacant_seats
                ));
            }
            text
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed() -> Vec<ListRow> {
        list(&import::tests::project_root().join("tenants")).expect("the committed tenants list")
    }

    #[test]
    fn list_counts_texas_seats_and_its_vacancy() {
        let rows = committed();
        let tx = rows.iter().find(|r| r.id == "TX").expect("TX is listed");
        assert_eq!(
            *tx,
            ListRow {
                id: "TX".to_string(),
                name: "Texas".to_string(),
                counties: 254,
                senators: 2,
                seats: 38,
                vacant_seats: 1,
            }
        );
    }

    #[test]
    fn list_as_json_is_an_array_scripts_can_read() {
        let json = render_list(&committed(), OutputFormat::Json).expect("renders");
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&json).expect("valid JSON");
        assert_eq!(parsed.len(), 56);
        assert_eq!(parsed[0]["id"], "AK");
        assert_eq!(parsed[0]["seats"], 1);
    }

    #[test]
    fn list_as_text_has_a_header_and_one_line_per_tenant() {
        let text = render_list(&committed(), OutputFormat::Text).expect("renders");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 57);
        assert!(lines[0].starts_with("ID   NAME"));
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("PR   Puerto Rico") && l.ends_with("    1      0"))
        );
    }

    #[test]
    fn listing_a_directory_with_a_broken_file_fails_and_points_at_validate() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("TX.json"), "{").expect("writes");
        let err = list(dir.path()).expect_err("a broken file is an error");
        assert!(err.to_string().contains("TX.json"), "{err}");
        assert!(err.to_string().contains("tenants validate"), "{err}");
    }
}
