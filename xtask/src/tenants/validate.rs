//! `cargo xtask tenants validate`: checks every file of `tenants/` and `index.json` against each
//! other, listing every problem with the file it is in.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use represent::tenant::{self, TenantFile};

use super::import::IndexEntry;

/// The tenant files of a directory that parsed, and every problem found in the directory.
#[derive(Debug, Default)]
pub struct Checked {
    /// The tenant files that parsed, sorted by file name.
    pub tenants: Vec<TenantFile>,
    /// Every problem, each starting with the file it is in.
    pub problems: Vec<String>,
    /// The problems that kept a file from being read or parsed at all (also in `problems`).
    pub unreadable: Vec<String>,
}

impl Checked {
    fn unreadable(&mut self, problem: String) {
        self.problems.push(problem.clone());
        self.unreadable.push(problem);
    }
}

/// Reads and checks every `.json` file of `dir`: each tenant file parses, validates and is named
/// after its id, and `index.json` lists exactly the tenant files, with their names.
pub fn check_dir(dir: &Path) -> Checked {
    let mut checked = Checked::default();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) => {
            checked.unreadable(format!("{}: cannot be listed: {err}", dir.display()));
            return checked;
        }
    };
    let mut files = BTreeMap::new();
    for entry in entries {
        let path = match entry {
            Ok(entry) => entry.path(),
            Err(err) => {
                checked.unreadable(format!("{}: cannot be listed: {err}", dir.display()));
                continue;
            }
        };
        if path.extension().is_some_and(|e| e == "json") {
            let name = path
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().to_string());
            match fs::read_to_string(&path) {
                Ok(text) => {
                    files.insert(name, text);
                }
                Err(err) => checked.unreadable(format!("{name}: cannot be read: {err}")),
            }
        }
    }

    let index_text = files.remove("index.json");
    for (name, text) in &files {
        let t = match serde_json::from_str::<TenantFile>(text) {
            Ok(t) => t,
            Err(err) => {
                checked.unreadable(format!("{name}: not a tenant file: {err}"));
                continue;
            }
        };
        if *name != format!("{}.json", t.id) {
            checked.problems.push(format!(
                "{name}: id `{}` does not match the file name",
                t.id
            ));
        }
        checked.problems.extend(
            tenant::validate(&t)
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
        checked.tenants.push(t);
    }

    match index_text {
        None => checked.problems.push("index.json: missing".to_string()),
        Some(text) => match serde_json::from_str::<Vec<IndexEntry>>(&text) {
            Err(err) => checked
                .problems
                .push(format!("index.json: not an index: {err}")),
            Ok(index) => check_index(&index, &checked.tenants, &mut checked.problems),
        },
    }
    checked
}

fn check_index(index: &[IndexEntry], tenants: &[TenantFile], problems: &mut Vec<String>) {
    if !index.windows(2).all(|w| w[0].id < w[1].id) {
        problems.push("index.json: ids are not sorted and unique".to_string());
    }
    for entry in index {
        match tenants.iter().find(|t| t.id == entry.id) {
            None => problems.push(format!(
                "index.json: `{}` has no tenant file `{}.json`",
                entry.id, entry.id
            )),
            Some(t) if t.name != entry.name => problems.push(format!(
                "index.json: `{}` is named `{}` but its file says `{}`",
                entry.id, entry.name, t.name
            )),
            Some(_) => {}
        }
    }
    for t in tenants {
        if !index.iter().any(|e| e.id == t.id) {
            problems.push(format!("index.json: tenant `{}` is not listed", t.id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::import::{self, tests::tenant};
    use super::*;
    use represent::tenant::County;

    #[test]
    fn the_committed_tenant_files_all_validate() {
        let checked = check_dir(&import::tests::project_root().join("tenants"));
        assert_eq!(checked.problems, Vec::<String>::new());
        assert_eq!(checked.tenants.len(), 56);
    }

    /// Writes the real WY and NM tenants into a temporary directory after `break_it` has had
    /// its way with them, and returns the problems found there.
    fn problems_after(break_it: impl FnOnce(&mut Vec<TenantFile>)) -> Vec<String> {
        let mut tenants = vec![tenant("NM").clone(), tenant("WY").clone()];
        break_it(&mut tenants);
        let dir = tempfile::tempdir().expect("tempdir");
        let index: Vec<IndexEntry> = tenants
            .iter()
            .map(|t| IndexEntry {
                id: t.id.clone(),
                name: t.name.clone(),
            })
            .collect();
        for (name, contents) in import::render(&tenants).expect("renders") {
            fs::write(dir.path().join(name), contents).expect("writes");
        }
        fs::write(
            dir.path().join("index.json"),
            serde_json::to_string(&index).expect("index serializes"),
        )
        .expect("writes");
        check_dir(dir.path()).problems
    }

    fn assert_reported(problems: &[String], file: &str, needle: &str) {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("{file}: ")) && p.contains(needle)),
            "expected `{file}: ...{needle}...`, got {problems:?}"
        );
    }

    #[test]
    fn good_files_have_no_problems() {
        assert_eq!(problems_after(|_| {}), Vec::<String>::new());
    }

    #[test]
    fn duplicate_county_fips_is_reported_with_its_file() {
        let problems = problems_after(|t| {
            let first = t[0].counties[0].clone();
            t[0].counties.push(first);
        });
        assert_reported(&problems, "NM.json", "duplicate county FIPS `35001`");
    }

    #[test]
    fn county_of_another_state_is_reported_with_its_file() {
        let problems = problems_after(|t| {
            t[1].counties.push(County {
                fips: "48001".to_string(),
                name: "Anderson County".to_string(),
            });
        });
        assert_reported(
            &problems,
            "WY.json",
            "county FIPS `48001` (Anderson County) belongs to another state",
        );
    }

    #[test]
    fn gap_in_districts_is_reported_with_its_file() {
        let problems = problems_after(|t| {
            t[0].seats.remove(1);
        });
        assert_reported(&problems, "NM.json", "districts [1, 3]");
    }

    #[test]
    fn invalid_id_is_reported_with_its_file() {
        let problems = problems_after(|t| t[1].id = "W?".to_string());
        assert_reported(
            &problems,
            "W?.json",
            "id `W?` is not a valid Lambda tenant id",
        );
    }

    #[test]
    fn a_file_named_after_another_tenant_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wy = serde_json::to_string(tenant("WY")).expect("serializes");
        fs::write(dir.path().join("WY.json"), &wy).expect("writes");
        fs::write(dir.path().join("NM.json"), &wy).expect("writes");
        fs::write(
            dir.path().join("index.json"),
            r#"[{"id":"WY","name":"Wyoming"}]"#,
        )
        .expect("writes");
        let problems = check_dir(dir.path()).problems;
        assert_reported(&problems, "NM.json", "id `WY` does not match the file name");
    }

    #[test]
    fn an_index_out_of_step_with_the_files_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let wy = serde_json::to_string(tenant("WY")).expect("serializes");
        fs::write(dir.path().join("WY.json"), &wy).expect("writes");
        fs::write(
            dir.path().join("index.json"),
            r#"[{"id":"TX","name":"Texas"},{"id":"WY","name":"Wyoming!"}]"#,
        )
        .expect("writes");
        let problems = check_dir(dir.path()).problems;
        assert_reported(&problems, "index.json", "`TX` has no tenant file `TX.json`");
        assert_reported(
            &problems,
            "index.json",
            "`WY` is named `Wyoming!` but its file says `Wyoming`",
        );
    }

    #[test]
    fn a_file_that_is_not_a_tenant_is_reported_and_the_others_still_checked() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("XX.json"), r#"{"id":"XX"}"#).expect("writes");
        let problems = check_dir(dir.path()).problems;
        assert_reported(&problems, "XX.json", "not a tenant file");
        assert_reported(&problems, "index.json", "missing");
    }
}
