//! `cargo xtask tenants import`: reads the public source data (legislators YAML, Census FIPS CSVs)
//! and writes one tenant file per state, DC and territory, plus `index.json`. Same input, same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use anyhow::{Context, bail};
use represent::tenant::{
    self, County, DistrictOffice, Member, Seat, SeatTitle, TenantFile, TenantKind,
};
use serde::{Deserialize, Deserializer, Serialize};

/// House seats per state after the 2020 census (435 in all). The legislators file alone cannot say
/// how many seats a state has: a vacancy at the highest district would silently shrink the state.
const APPORTIONMENT: [(&str, u32); 50] = [
    ("AK", 1),
    ("AL", 7),
    ("AR", 4),
    ("AZ", 9),
    ("CA", 52),
    ("CO", 8),
    ("CT", 5),
    ("DE", 1),
    ("FL", 28),
    ("GA", 14),
    ("HI", 2),
    ("IA", 4),
    ("ID", 2),
    ("IL", 17),
    ("IN", 9),
    ("KS", 4),
    ("KY", 6),
    ("LA", 6),
    ("MA", 9),
    ("MD", 8),
    ("ME", 2),
    ("MI", 13),
    ("MN", 8),
    ("MO", 8),
    ("MS", 4),
    ("MT", 2),
    ("NC", 14),
    ("ND", 1),
    ("NE", 3),
    ("NH", 2),
    ("NJ", 12),
    ("NM", 3),
    ("NV", 4),
    ("NY", 26),
    ("OH", 15),
    ("OK", 5),
    ("OR", 6),
    ("PA", 17),
    ("RI", 2),
    ("SC", 7),
    ("SD", 1),
    ("TN", 9),
    ("TX", 38),
    ("UT", 4),
    ("VA", 11),
    ("VT", 1),
    ("WA", 10),
    ("WI", 8),
    ("WV", 2),
    ("WY", 1),
];

/// The territories with a non-voting member of the House. The Census county file does not cover
/// them, so their name and FIPS code come from here; they have no counties in Represent yet.
const TERRITORIES: [(&str, &str, &str, SeatTitle); 5] = [
    ("AS", "American Samoa", "60", SeatTitle::Delegate),
    ("GU", "Guam", "66", SeatTitle::Delegate),
    ("MP", "Northern Mariana Islands", "69", SeatTitle::Delegate),
    ("PR", "Puerto Rico", "72", SeatTitle::ResidentCommissioner),
    ("VI", "U.S. Virgin Islands", "78", SeatTitle::Delegate),
];

/// The District of Columbia: a county-equivalent in the Census files, not a state, with a delegate.
const DC: &str = "DC";

/// County names that the source stores mis-encoded, by FIPS. Any other name that is not valid
/// UTF-8 stops the import: a new encoding problem must be looked at, not guessed.
const COUNTY_NAME_FIXES: [(&str, &str); 1] = [("35013", "Doña Ana County")];

/// County-equivalents that the Census had retired before the 2018 vintage but that the county
/// file still lists, with `NA` for their state, region and division. Their successors are in the
/// file under their own FIPS, so these rows are left out; any other `NA` row stops the import.
const RETIRED_COUNTIES: [(&str, &str); 3] = [
    (
        "02270",
        "Wade Hampton Census Area, renamed Kusilvak Census Area (02158) in 2015",
    ),
    (
        "46113",
        "Shannon County, renamed Oglala Lakota County (46102) in 2015",
    ),
    (
        "51515",
        "Bedford city, merged into Bedford County (51019) in 2013",
    ),
];

/// The `index.json` entries, which `represent::registry` embeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexEntry {
    pub id: String,
    pub name: String,
}

/// Reads the sources in `data_dir`, builds every tenant and writes them into `out_dir`, removing
/// tenant files that no longer have a tenant. Returns the tenants written, sorted by id.
pub fn import(data_dir: &Path, out_dir: &Path) -> anyhow::Result<Vec<TenantFile>> {
    let tenants = build(&read_source(data_dir)?)?;
    write(out_dir, &tenants)?;
    Ok(tenants)
}

/// The parsed source files.
#[derive(Debug)]
pub struct Source {
    states: Vec<StateRow>,
    counties: Vec<CountyRow>,
    legislators: Vec<Legislator>,
    offices: Vec<MemberOffices>,
}

/// Reads and parses the four source files of `data_dir`.
pub fn read_source(data_dir: &Path) -> anyhow::Result<Source> {
    let read = |name: &str| {
        let path = data_dir.join(name);
        eprintln!("reading {}", path.display());
        fs::read(&path).with_context(|| format!("failed to read `{}`", path.display()))
    };
    let states = read_states(read("state_fips_master.csv")?.as_slice())
        .context("failed to parse `state_fips_master.csv`")?;
    let counties = read_counties(read("county_fips_master.csv")?.as_slice())
        .context("failed to parse `county_fips_master.csv`")?;
    let legislators = serde_norway::from_slice(&read("legislators-current.yaml")?)
        .context("failed to parse `legislators-current.yaml`")?;
    let offices = serde_norway::from_slice(&read("legislators-district-offices.yaml")?)
        .context("failed to parse `legislators-district-offices.yaml`")?;
    Ok(Source {
        states,
        counties,
        legislators,
        offices,
    })
}

#[derive(Debug, Clone)]
struct StateRow {
    abbr: String,
    name: String,
    fips: String,
    region: String,
    division: String,
}

#[derive(Debug, Clone)]
struct CountyRow {
    fips: String,
    name: String,
    state: StateRow,
}

#[derive(Debug, Deserialize)]
struct Legislator {
    id: LegislatorIds,
    name: LegislatorName,
    terms: Vec<Term>,
}

#[derive(Debug, Deserialize)]
struct LegislatorIds {
    bioguide: String,
}

#[derive(Debug, Deserialize)]
struct LegislatorName {
    first: String,
    last: String,
    suffix: Option<String>,
    official_full: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Term {
    #[serde(rename = "type")]
    kind: String,
    state: String,
    district: Option<u32>,
    party: Option<String>,
    phone: Option<String>,
    url: Option<String>,
    address: Option<String>,
    contact_form: Option<String>,
}

#[derive(Debug, Deserialize)]
struct MemberOffices {
    id: LegislatorIds,
    #[serde(default)]
    offices: Vec<SourceOffice>,
}

#[derive(Debug, Deserialize)]
struct SourceOffice {
    id: String,
    address: Option<String>,
    #[serde(default, deserialize_with = "scalar_text")]
    suite: Option<String>,
    building: Option<String>,
    city: String,
    state: String,
    #[serde(default, deserialize_with = "scalar_text")]
    zip: Option<String>,
    #[serde(default, deserialize_with = "scalar_text")]
    phone: Option<String>,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

/// Reads a YAML scalar as text: the source writes most suites as strings (`'247'`) but a few as
/// bare numbers (`suite: 100`), which YAML types as integers.
fn scalar_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    use serde::de::Error;
    match Option::<serde_norway::Value>::deserialize(d)? {
        None | Some(serde_norway::Value::Null) => Ok(None),
        Some(serde_norway::Value::String(s)) => Ok(Some(s)),
        Some(serde_norway::Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(D::Error::custom(format!(
            "expected a string or a number, found {other:?}"
        ))),
    }
}

/// The columns of one CSV file by header name, so that a reordered file still reads correctly.
struct Columns(Vec<String>);

impl Columns {
    fn new(headers: &csv::ByteRecord) -> Self {
        Self(
            headers
                .iter()
                .map(|h| String::from_utf8_lossy(h).trim().to_string())
                .collect(),
        )
    }

    fn index(&self, name: &str) -> anyhow::Result<usize> {
        self.0
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("column `{name}` is missing"))
    }
}

fn field(record: &csv::ByteRecord, index: usize, line: u64) -> anyhow::Result<&[u8]> {
    record
        .get(index)
        .with_context(|| format!("line {line}: column {} is missing", index + 1))
}

fn utf8_field(record: &csv::ByteRecord, index: usize, line: u64) -> anyhow::Result<String> {
    let bytes = field(record, index, line)?;
    let text = std::str::from_utf8(bytes)
        .with_context(|| format!("line {line}: `{}` is not valid UTF-8", latin1(bytes)))?;
    Ok(text.trim().to_string())
}

/// Decodes bytes one per character (ISO 8859-1), which never fails; used only to show bad bytes.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// Pads a FIPS code whose leading zeros the CSV lost (`1001` is `01001`).
fn pad_fips(raw: &str, width: usize, line: u64) -> anyhow::Result<String> {
    if raw.is_empty() || raw.len() > width || !raw.bytes().all(|b| b.is_ascii_digit()) {
        bail!("line {line}: FIPS code `{raw}` is not 1 to {width} digits");
    }
    Ok(format!("{raw:0>width$}"))
}

fn read_states(bytes: &[u8]) -> anyhow::Result<Vec<StateRow>> {
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
    let columns = Columns::new(reader.byte_headers()?);
    let (abbr, name, fips, region, division) = (
        columns.index("state_abbr")?,
        columns.index("state_name")?,
        columns.index("fips")?,
        columns.index("region_name")?,
        columns.index("division_name")?,
    );
    let mut states = Vec::new();
    for record in reader.byte_records() {
        let record = record?;
        let line = record.position().map_or(0, |p| p.line());
        states.push(StateRow {
            abbr: utf8_field(&record, abbr, line)?,
            name: utf8_field(&record, name, line)?,
            fips: pad_fips(&utf8_field(&record, fips, line)?, 2, line)?,
            region: utf8_field(&record, region, line)?,
            division: utf8_field(&record, division, line)?,
        });
    }
    Ok(states)
}

/// Reads the county file as bytes: it is not valid UTF-8, and the one known bad name is replaced
/// by its correct spelling from `COUNTY_NAME_FIXES` rather than decoded lossily.
fn read_counties(bytes: &[u8]) -> anyhow::Result<Vec<CountyRow>> {
    let mut reader = csv::ReaderBuilder::new().from_reader(bytes);
    let columns = Columns::new(reader.byte_headers()?);
    let (fips, name, abbr, state_name, state_fips, region, division) = (
        columns.index("fips")?,
        columns.index("county_name")?,
        columns.index("state_abbr")?,
        columns.index("state_name")?,
        columns.index("state")?,
        columns.index("region_name")?,
        columns.index("division_name")?,
    );
    let mut counties = Vec::new();
    for record in reader.byte_records() {
        let record = record?;
        let line = record.position().map_or(0, |p| p.line());
        let county_fips = pad_fips(&utf8_field(&record, fips, line)?, 5, line)?;
        if let Some((_, why)) = RETIRED_COUNTIES.iter().find(|(f, _)| *f == county_fips) {
            eprintln!("leaving out retired county {county_fips}: {why}");
            continue;
        }
        let raw_name = field(&record, name, line)?;
        let county_name = match std::str::from_utf8(raw_name) {
            Ok(text) => text.trim().to_string(),
            Err(_) => match COUNTY_NAME_FIXES.iter().find(|(f, _)| *f == county_fips) {
                Some((_, fixed)) => {
                    eprintln!(
                        "fixing the mis-encoded name of county {county_fips}: `{}` is `{fixed}`",
                        latin1(raw_name)
                    );
                    fixed.to_string()
                }
                None => bail!(
                    "line {line}: the name of county {county_fips} is not valid UTF-8 (`{}`); \
                     add its correct spelling to COUNTY_NAME_FIXES",
                    latin1(raw_name)
                ),
            },
        };
        counties.push(CountyRow {
            fips: county_fips,
            name: county_name,
            state: StateRow {
                abbr: utf8_field(&record, abbr, line)?,
                name: utf8_field(&record, state_name, line)?,
                fips: pad_fips(&utf8_field(&record, state_fips, line)?, 2, line)?,
                region: utf8_field(&record, region, line)?,
                division: utf8_field(&record, division, line)?,
            },
        });
    }
    Ok(counties)
}

/// Builds every tenant from the sources, sorted by id. Every inconsistency in the sources is
/// collected and reported together; every tenant built must pass `tenant::validate`.
pub fn build(source: &Source) -> anyhow::Result<Vec<TenantFile>> {
    let mut problems = Vec::new();
    let mut tenants: BTreeMap<String, TenantFile> = BTreeMap::new();
    let new_tenant =
        |id: &str, name: &str, kind, fips: &str, region: Option<&str>, division: Option<&str>| {
            TenantFile {
                id: id.to_string(),
                name: name.to_string(),
                kind,
                fips: fips.to_string(),
                region: region.map(str::to_string),
                division: division.map(str::to_string),
                counties: Vec::new(),
                senators: Vec::new(),
                seats: Vec::new(),
            }
        };

    // States come from the state file; the seat count from the apportionment table.
    let apportionment: BTreeMap<&str, u32> = APPORTIONMENT.into_iter().collect();
    for s in &source.states {
        let Some(&seats) = apportionment.get(s.abbr.as_str()) else {
            problems.push(format!("state `{}` has no House apportionment", s.abbr));
            continue;
        };
        let mut t = new_tenant(
            &s.abbr,
            &s.name,
            TenantKind::State,
            &s.fips,
            Some(&s.region),
            Some(&s.division),
        );
        t.seats = if seats == 1 {
            vec![vacant(0, SeatTitle::Representative)]
        } else {
            (1..=seats)
                .map(|d| vacant(d, SeatTitle::Representative))
                .collect()
        };
        if tenants.insert(s.abbr.clone(), t).is_some() {
            problems.push(format!(
                "state `{}` is listed twice in the state file",
                s.abbr
            ));
        }
    }
    for (abbr, _) in APPORTIONMENT {
        if !tenants.contains_key(abbr) {
            problems.push(format!(
                "state `{abbr}` is apportioned but missing from the state file"
            ));
        }
    }

    // The state file has no DC row; the county file does, with its FIPS, region and division.
    if !tenants.contains_key(DC) {
        match source.counties.iter().find(|c| c.state.abbr == DC) {
            Some(c) => {
                let s = &c.state;
                let mut t = new_tenant(
                    DC,
                    &s.name,
                    TenantKind::District,
                    &s.fips,
                    Some(&s.region),
                    Some(&s.division),
                );
                t.seats = vec![vacant(0, SeatTitle::Delegate)];
                tenants.insert(DC.to_string(), t);
            }
            None => problems.push("the District of Columbia is in neither FIPS file".to_string()),
        }
    }

    for (id, name, fips, title) in TERRITORIES {
        let mut t = new_tenant(id, name, TenantKind::Territory, fips, None, None);
        t.seats = vec![vacant(0, title)];
        tenants.insert(id.to_string(), t);
    }

    // Counties, deduplicated by FIPS: DC is listed twice, once as a state-level row.
    let mut counties: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for c in &source.counties {
        let by_fips = counties.entry(c.state.abbr.as_str()).or_default();
        match by_fips.insert(&c.fips, &c.name) {
            Some(other) if other != c.name => problems.push(format!(
                "county FIPS `{}` is listed with two names: `{other}` and `{}`",
                c.fips, c.name
            )),
            _ => {}
        }
    }
    for (abbr, by_fips) in counties {
        match tenants.get_mut(abbr) {
            Some(t) => {
                t.counties = by_fips
                    .into_iter()
                    .map(|(fips, name)| County {
                        fips: fips.to_string(),
                        name: name.to_string(),
                    })
                    .collect();
            }
            None => problems.push(format!("counties of unknown state `{abbr}`")),
        }
    }

    // Members, from their last term, with their district offices.
    let mut offices: BTreeMap<&str, Vec<&SourceOffice>> = BTreeMap::new();
    for m in &source.offices {
        offices
            .entry(m.id.bioguide.as_str())
            .or_default()
            .extend(m.offices.iter());
    }
    for legislator in &source.legislators {
        let bioguide = legislator.id.bioguide.as_str();
        let Some(term) = legislator.terms.last() else {
            problems.push(format!("member `{bioguide}` has no terms"));
            continue;
        };
        let Some(t) = tenants.get_mut(&term.state) else {
            problems.push(format!(
                "member `{bioguide}` serves unknown state `{}`",
                term.state
            ));
            continue;
        };
        let Some(party) = &term.party else {
            problems.push(format!(
                "member `{bioguide}` has no party in their last term"
            ));
            continue;
        };
        let member = Member {
            name: display_name(&legislator.name),
            party: party.clone(),
            phone: term.phone.clone(),
            website: term.url.clone(),
            office: term.address.clone(),
            contact_form: term.contact_form.clone(),
            bioguide: bioguide.to_string(),
            district_offices: district_offices(
                offices.get(bioguide).map_or(&[][..], Vec::as_slice),
            ),
        };
        match (term.kind.as_str(), term.district) {
            ("sen", _) if t.kind == TenantKind::State => t.senators.push(member),
            ("sen", _) => problems.push(format!(
                "member `{bioguide}` is a senator for `{}`, which has no senators",
                t.id
            )),
            ("rep", Some(district)) => match t.seats.iter_mut().find(|s| s.district == district) {
                Some(seat) => match &seat.representative {
                    None => seat.representative = Some(member),
                    Some(holder) => problems.push(format!(
                        "district {district} of `{}` has two members: `{}` and `{bioguide}`",
                        t.id, holder.bioguide
                    )),
                },
                None => problems.push(format!(
                    "member `{bioguide}` holds district {district} of `{}`, which has seats {:?}",
                    t.id,
                    t.seats.iter().map(|s| s.district).collect::<Vec<_>>()
                )),
            },
            ("rep", None) => problems.push(format!(
                "member `{bioguide}` is a representative without a district"
            )),
            (other, _) => problems.push(format!(
                "member `{bioguide}` has a last term of unknown type `{other}`"
            )),
        }
    }

    for t in tenants.values_mut() {
        t.senators.sort_by(|a, b| a.bioguide.cmp(&b.bioguide));
        problems.extend(
            tenant::validate(t)
                .into_iter()
                .map(|p| format!("{}: {p}", t.id)),
        );
    }
    if !problems.is_empty() {
        bail!(
            "the source data has {} problems:\n  - {}",
            problems.len(),
            problems.join("\n  - ")
        );
    }
    Ok(tenants.into_values().collect())
}

fn vacant(district: u32, title: SeatTitle) -> Seat {
    Seat {
        district,
        title,
        representative: None,
    }
}

/// The name a member uses officially; the newest members may not have one yet, so it falls back
/// to first and last name.
fn display_name(name: &LegislatorName) -> String {
    if let Some(full) = &name.official_full {
        return full.clone();
    }
    let mut composed = format!("{} {}", name.first, name.last);
    if let Some(suffix) = &name.suffix {
        composed.push_str(", ");
        composed.push_str(suffix);
    }
    composed
}

fn district_offices(source: &[&SourceOffice]) -> Vec<DistrictOffice> {
    let mut sorted = source.to_vec();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    sorted
        .into_iter()
        .map(|o| DistrictOffice {
            address: o.address.clone(),
            suite: o.suite.clone(),
            building: o.building.clone(),
            city: o.city.clone(),
            state: o.state.clone(),
            zip: o.zip.clone(),
            phone: o.phone.clone(),
            latitude: o.latitude,
            longitude: o.longitude,
        })
        .collect()
}

/// Renders the files of `tenants/`: `(file name, contents)`, pretty JSON ending with a newline.
pub fn render(tenants: &[TenantFile]) -> anyhow::Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    let mut index = Vec::new();
    for t in tenants {
        files.push((format!("{}.json", t.id), to_json(t)?));
        index.push(IndexEntry {
            id: t.id.clone(),
            name: t.name.clone(),
        });
    }
    index.sort_by(|a, b| a.id.cmp(&b.id));
    files.push(("index.json".to_string(), to_json(&index)?));
    files.sort();
    Ok(files)
}

fn to_json<T: Serialize>(value: &T) -> anyhow::Result<String> {
    let mut json = serde_json::to_string_pretty(value)?;
    json.push('\n');
    Ok(json)
}

/// Writes the rendered files into `out_dir` and removes the `.json` files that are no longer
/// produced, so that a tenant dropped from the sources disappears from `tenants/`.
fn write(out_dir: &Path, tenants: &[TenantFile]) -> anyhow::Result<()> {
    let files = render(tenants)?;
    fs::create_dir_all(out_dir)
        .with_context(|| format!("failed to create `{}`", out_dir.display()))?;
    let produced: BTreeSet<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    for entry in
        fs::read_dir(out_dir).with_context(|| format!("failed to list `{}`", out_dir.display()))?
    {
        let path = entry?.path();
        let stale = path.extension().is_some_and(|e| e == "json")
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| !produced.contains(n));
        if stale {
            eprintln!("removing {}", path.display());
            fs::remove_file(&path)
                .with_context(|| format!("failed to remove `{}`", path.display()))?;
        }
    }
    for (name, contents) in &files {
        let path = out_dir.join(name);
        fs::write(&path, contents)
            .with_context(|| format!("failed to write `{}`", path.display()))?;
    }
    eprintln!("wrote {} files to {}", files.len(), out_dir.display());
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;
    use std::sync::OnceLock;

    use super::*;

    pub(crate) fn project_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives inside the project")
            .to_path_buf()
    }

    pub(crate) fn data_dir() -> PathBuf {
        project_root().join("../shared/data")
    }

    /// The tenants built from the real source data, once for all tests.
    pub(crate) fn imported() -> &'static [TenantFile] {
        static TENANTS: OnceLock<Vec<TenantFile>> = OnceLock::new();
        TENANTS.get_or_init(|| {
            let source = read_source(&data_dir()).expect("the source data reads");
            build(&source).expect("the source data builds")
        })
    }

    pub(crate) fn tenant(id: &str) -> &'static TenantFile {
        imported()
            .iter()
            .find(|t| t.id == id)
            .unwrap_or_else(|| panic!("tenant {id} is imported"))
    }

    fn files_in(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        fs::read_dir(dir)
            .expect("directory lists")
            .map(|e| e.expect("entry reads").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .map(|p| {
                let name = p
                    .file_name()
                    .expect("file name")
                    .to_string_lossy()
                    .to_string();
                (name, fs::read(&p).expect("file reads"))
            })
            .collect()
    }

    #[test]
    fn import_is_deterministic() {
        let (a, b) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        import(&data_dir(), a.path()).expect("first import");
        import(&data_dir(), b.path()).expect("second import");
        let (a, b) = (files_in(a.path()), files_in(b.path()));
        assert_eq!(a.len(), 57, "56 tenants and index.json");
        assert!(a == b, "two imports of the same data differ");
        assert!(
            a.values()
                .all(|bytes| bytes.ends_with(b"}\n") || bytes.ends_with(b"]\n"))
        );
    }

    #[test]
    fn committed_tenants_are_exactly_what_import_writes() {
        let fresh = tempfile::tempdir().expect("tempdir");
        import(&data_dir(), fresh.path()).expect("import");
        let fresh = files_in(fresh.path());
        let committed = files_in(&project_root().join("tenants"));
        let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(&committed),
            names(&fresh),
            "run `cargo xtask tenants import`"
        );
        for (name, bytes) in &fresh {
            assert!(
                committed.get(name) == Some(bytes),
                "tenants/{name} is stale: run `cargo xtask tenants import`"
            );
        }
    }

    #[test]
    fn import_removes_stale_tenant_files_and_keeps_the_readme() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("ZZ.json"), "{}").expect("write");
        fs::write(dir.path().join("README.md"), "docs").expect("write");
        write(dir.path(), &imported()[..1]).expect("write");
        assert!(!dir.path().join("ZZ.json").exists());
        assert!(dir.path().join("README.md").exists());
        assert!(dir.path().join("AK.json").exists());
    }

    #[test]
    fn every_state_dc_and_the_five_territories_are_tenants() {
        let ids: Vec<&str> = imported().iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids.len(), 56);
        let count = |kind| imported().iter().filter(|t| t.kind == kind).count();
        assert_eq!(count(TenantKind::State), 50);
        assert_eq!(count(TenantKind::District), 1);
        assert_eq!(count(TenantKind::Territory), 5);
        let seats: usize = imported()
            .iter()
            .filter(|t| t.kind == TenantKind::State)
            .map(|t| t.seats.len())
            .sum();
        assert_eq!(seats, 435);
    }

    #[test]
    fn dc_is_built_from_its_county_row_although_the_state_file_lacks_it() {
        let dc = tenant("DC");
        assert_eq!(dc.kind, TenantKind::District);
        assert_eq!(dc.name, "District of Columbia");
        assert_eq!(dc.fips, "11");
        assert_eq!(dc.region.as_deref(), Some("South"));
        assert_eq!(dc.division.as_deref(), Some("South Atlantic"));
        assert!(dc.senators.is_empty());
    }

    #[test]
    fn dc_is_listed_once_although_the_county_file_lists_it_twice() {
        assert_eq!(
            tenant("DC").counties,
            vec![County {
                fips: "11001".to_string(),
                name: "District of Columbia".to_string()
            }]
        );
    }

    #[test]
    fn fips_codes_keep_their_leading_zeros() {
        let al = tenant("AL");
        assert_eq!(al.fips, "01");
        assert_eq!(al.counties[0].fips, "01001");
        assert_eq!(al.counties[0].name, "Autauga County");
    }

    #[test]
    fn retired_counties_listed_without_a_state_are_left_out_for_their_successors() {
        let fips = |id| {
            tenant(id)
                .counties
                .iter()
                .map(|c| c.fips.as_str())
                .collect::<Vec<_>>()
        };
        assert!(!fips("AK").contains(&"02270") && fips("AK").contains(&"02158"));
        assert!(!fips("SD").contains(&"46113") && fips("SD").contains(&"46102"));
        assert!(!fips("VA").contains(&"51515") && fips("VA").contains(&"51019"));
        // The Census counted 3,142 counties and equivalents in the 50 states and DC in 2018.
        assert_eq!(
            imported().iter().map(|t| t.counties.len()).sum::<usize>(),
            3142
        );
    }

    #[test]
    fn an_unknown_county_without_a_state_stops_the_import() {
        let csv = b"fips,county_name,state_abbr,state_name,state,region_name,division_name\n\
                    1001,Autauga County,AL,Alabama,NA,NA,NA\n";
        let err = read_counties(csv).expect_err("a row without a state is not guessed");
        assert!(format!("{err:#}").contains("`NA`"), "{err:#}");
    }

    #[test]
    fn connecticut_keeps_its_eight_historic_counties() {
        assert_eq!(tenant("CT").counties.len(), 8);
        assert_eq!(tenant("CT").counties[0].name, "Fairfield County");
    }

    #[test]
    fn mis_encoded_dona_ana_county_is_spelled_correctly() {
        let nm = tenant("NM");
        let county = nm
            .counties
            .iter()
            .find(|c| c.fips == "35013")
            .expect("35013 is listed");
        assert_eq!(county.name, "Doña Ana County");
    }

    #[test]
    fn an_unknown_mis_encoded_county_name_stops_the_import() {
        let csv = b"fips,county_name,state_abbr,state_name,state,region_name,division_name\n\
                    1001,Autauga\xd0 County,AL,Alabama,1,South,East South Central\n";
        let err = read_counties(csv).expect_err("an unknown bad name is not guessed");
        assert!(err.to_string().contains("county 01001"), "{err}");
    }

    #[test]
    fn texas_shows_its_vacant_23rd_district() {
        let tx = tenant("TX");
        assert_eq!(tx.seats.len(), 38);
        let seat = tx
            .seats
            .iter()
            .find(|s| s.district == 23)
            .expect("district 23 exists");
        assert_eq!(seat.representative, None);
        assert_eq!(
            tx.seats
                .iter()
                .filter(|s| s.representative.is_some())
                .count(),
            37
        );
    }

    #[test]
    fn a_vacancy_at_the_highest_district_still_shows_a_seat() {
        // California's district 52 is the last one; empty it in the source and rebuild.
        let mut source = read_source(&data_dir()).expect("source reads");
        source.legislators.retain(|l| {
            l.terms
                .last()
                .is_none_or(|t| !(t.state == "CA" && t.district == Some(52)))
        });
        let tenants = build(&source).expect("builds");
        let ca = tenants.iter().find(|t| t.id == "CA").expect("CA");
        assert_eq!(ca.seats.len(), 52);
        assert_eq!(ca.seats[51].district, 52);
        assert_eq!(ca.seats[51].representative, None);
    }

    #[test]
    fn wyoming_has_one_at_large_seat_and_two_senators() {
        let wy = tenant("WY");
        assert_eq!(wy.seats.len(), 1);
        assert_eq!(wy.seats[0].district, 0);
        assert_eq!(wy.seats[0].title, SeatTitle::Representative);
        assert!(wy.seats[0].representative.is_some());
        assert_eq!(wy.senators.len(), 2);
    }

    #[test]
    fn territories_have_no_senators_and_a_titled_delegate() {
        for id in ["AS", "GU", "MP", "VI", "PR"] {
            let t = tenant(id);
            assert_eq!(t.kind, TenantKind::Territory, "{id}");
            assert!(t.senators.is_empty(), "{id} has no senators");
            assert_eq!(t.region, None, "{id}");
            assert_eq!(t.seats.len(), 1, "{id}");
            assert_eq!(t.seats[0].district, 0, "{id}");
            assert!(t.seats[0].representative.is_some(), "{id} has its member");
        }
        assert_eq!(tenant("PR").seats[0].title, SeatTitle::ResidentCommissioner);
        assert_eq!(tenant("GU").seats[0].title, SeatTitle::Delegate);
        assert_eq!(tenant("DC").seats[0].title, SeatTitle::Delegate);
    }

    #[test]
    fn senators_come_from_their_last_term() {
        // Maria Cantwell was a representative first; her last term makes her a senator.
        let wa = tenant("WA");
        let cantwell = wa
            .senators
            .iter()
            .find(|m| m.bioguide == "C000127")
            .expect("Cantwell is a senator of WA");
        assert_eq!(cantwell.name, "Maria Cantwell");
        assert!(wa.seats.iter().all(|s| {
            s.representative
                .as_ref()
                .is_none_or(|r| r.bioguide != "C000127")
        }));
    }

    #[test]
    fn members_without_an_official_name_or_office_are_kept_with_nulls() {
        let ca = tenant("CA");
        let first = ca.seats[0].representative.as_ref().expect("CA-1 is held");
        assert_eq!(first.name, "James Gallagher");
        assert_eq!(first.phone, None);
        assert_eq!(first.office, None);
    }

    #[test]
    fn the_apportionment_table_has_435_seats() {
        assert_eq!(APPORTIONMENT.iter().map(|(_, n)| n).sum::<u32>(), 435);
    }
}
