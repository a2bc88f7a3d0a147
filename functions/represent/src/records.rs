//! How a tenant file is stored in DynamoDB: one partition per tenant, one item per record, each
//! record's sort key naming what it holds and its `data` attribute holding the JSON.
//!
//! | sort key (`record`) | `data` |
//! |---|---|
//! | `STATE` | `{id, name, kind, fips, region, division}` |
//! | `COUNTY#<5-digit FIPS>` | `{fips, name}` |
//! | `SENATOR#<bioguide>` | a member |
//! | `SEAT#<2-digit district>` | `{district, title, representative}` (`representative` is `null` while vacant) |
//!
//! Numbers in sort keys are zero-padded so that DynamoDB's byte order is the natural order
//! (`SEAT#07` before `SEAT#10`), which is also the order of the tenant file.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::tenant::{self, County, Member, Seat, TenantFile, TenantKind};

/// Sort key of the one record that describes the tenant itself.
pub const STATE: &str = "STATE";
/// Sort key prefix of county records.
pub const COUNTY_PREFIX: &str = "COUNTY#";
/// Sort key prefix of senator records.
pub const SENATOR_PREFIX: &str = "SENATOR#";
/// Sort key prefix of House seat records.
pub const SEAT_PREFIX: &str = "SEAT#";

/// The `STATE` record: the tenant file without its lists.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateRecord {
    id: String,
    name: String,
    kind: TenantKind,
    fips: String,
    region: Option<String>,
    division: Option<String>,
}

/// A tenant's data as a function serves it: the tenant file, read back from its records, with
/// the lookups the routes need.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantData {
    file: TenantFile,
}

impl TenantData {
    /// Wraps a tenant file that has already been validated (the committed files are, by a test of
    /// the importer; records are, by `from_records`).
    pub fn new(file: TenantFile) -> Self {
        TenantData { file }
    }

    /// The tenant id (`TX`).
    pub fn id(&self) -> &str {
        &self.file.id
    }

    /// The display name (`Texas`).
    pub fn name(&self) -> &str {
        &self.file.name
    }

    pub fn file(&self) -> &TenantFile {
        &self.file
    }

    pub fn into_file(self) -> TenantFile {
        self.file
    }

    /// The county with this 5-digit FIPS code, if it is one of this tenant's.
    pub fn county(&self, fips: &str) -> Option<&County> {
        self.file.counties.iter().find(|c| c.fips == fips)
    }

    /// The House seat of this district (`0` is the at-large seat).
    pub fn seat(&self, district: u32) -> Option<&Seat> {
        self.file.seats.iter().find(|s| s.district == district)
    }
}

/// Why a set of records does not make a tenant.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    #[error("tenant `{tenant}` has no `STATE` record")]
    MissingState { tenant: String },
    #[error("record `{record}` of tenant `{tenant}` is not valid JSON for its kind: {source}")]
    Json {
        tenant: String,
        record: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("record `{record}` of tenant `{tenant}` is not a known kind of record")]
    UnknownRecord { tenant: String, record: String },
    #[error("record `{record}` of tenant `{tenant}` appears more than once")]
    Duplicate { tenant: String, record: String },
    #[error("record `{record}` of tenant `{tenant}` holds `{found}` under another key")]
    KeyMismatch {
        tenant: String,
        record: String,
        found: String,
    },
    #[error("the records of tenant `{tenant}` describe tenant `{found}`")]
    OtherTenant { tenant: String, found: String },
    #[error("the records of tenant `{tenant}` do not make a valid tenant: {}", problems.join("; "))]
    Invalid {
        tenant: String,
        problems: Vec<String>,
    },
}

/// The sort key of a county record (`COUNTY#48201`).
pub fn county_key(fips: &str) -> String {
    format!("{COUNTY_PREFIX}{fips}")
}

/// The sort key of a senator record (`SENATOR#C001056`).
pub fn senator_key(bioguide: &str) -> String {
    format!("{SENATOR_PREFIX}{bioguide}")
}

/// The sort key of a House seat record (`SEAT#07`, `SEAT#00` for an at-large seat).
pub fn seat_key(district: u32) -> String {
    format!("{SEAT_PREFIX}{district:02}")
}

/// The records of one tenant, by sort key. Serialization is deterministic (struct field order),
/// so seeding the same file twice writes the same bytes.
pub fn to_records(t: &TenantFile) -> BTreeMap<String, String> {
    let state = StateRecord {
        id: t.id.clone(),
        name: t.name.clone(),
        kind: t.kind,
        fips: t.fips.clone(),
        region: t.region.clone(),
        division: t.division.clone(),
    };
    let mut records = BTreeMap::new();
    records.insert(STATE.to_string(), to_json(&state));
    for county in &t.counties {
        records.insert(county_key(&county.fips), to_json(county));
    }
    for senator in &t.senators {
        records.insert(senator_key(&senator.bioguide), to_json(senator));
    }
    for seat in &t.seats {
        records.insert(seat_key(seat.district), to_json(seat));
    }
    records
}

fn to_json<T: Serialize>(value: &T) -> String {
    // These are plain structs of strings, numbers and options: serializing them cannot fail.
    serde_json::to_string(value).expect("tenant records serialize to JSON")
}

/// Rebuilds a tenant from its records, in any order. Every record must parse, sit under the key
/// its content implies, and belong to `tenant`; the result must pass `tenant::validate`, so that a
/// half-seeded or hand-edited table is an error rather than a wrong answer.
pub fn from_records(
    tenant: &str,
    records: impl IntoIterator<Item = (String, String)>,
) -> Result<TenantData, RecordsError> {
    let mut sorted = BTreeMap::new();
    for (key, data) in records {
        if sorted.contains_key(&key) {
            return Err(RecordsError::Duplicate {
                tenant: tenant.to_string(),
                record: key,
            });
        }
        sorted.insert(key, data);
    }

    let mut state: Option<StateRecord> = None;
    let mut counties = Vec::new();
    let mut senators = Vec::new();
    let mut seats = Vec::new();
    // BTreeMap order is the sort key order, which the key format makes the tenant file's order.
    for (key, data) in &sorted {
        let parse_error = |source| RecordsError::Json {
            tenant: tenant.to_string(),
            record: key.clone(),
            source,
        };
        let mismatch = |found: String| RecordsError::KeyMismatch {
            tenant: tenant.to_string(),
            record: key.clone(),
            found,
        };
        if key == STATE {
            state = Some(serde_json::from_str(data).map_err(parse_error)?);
        } else if key.starts_with(COUNTY_PREFIX) {
            let county: County = serde_json::from_str(data).map_err(parse_error)?;
            if county_key(&county.fips) != *key {
                return Err(mismatch(county.fips));
            }
            counties.push(county);
        } else if key.starts_with(SENATOR_PREFIX) {
            let senator: Member = serde_json::from_str(data).map_err(parse_error)?;
            if senator_key(&senator.bioguide) != *key {
                return Err(mismatch(senator.bioguide));
            }
            senators.push(senator);
        } else if key.starts_with(SEAT_PREFIX) {
            let seat: Seat = serde_json::from_str(data).map_err(parse_error)?;
            if seat_key(seat.district) != *key {
                return Err(mismatch(format!("district {}", seat.district)));
            }
            seats.push(seat);
        } else {
            return Err(RecordsError::UnknownRecord {
                tenant: tenant.to_string(),
                record: key.clone(),
            });
        }
    }

    let state = state.ok_or_else(|| RecordsError::MissingState {
        tenant: tenant.to_string(),
    })?;
    if state.id != tenant {
        return Err(RecordsError::OtherTenant {
            tenant: tenant.to_string(),
            found: state.id,
        });
    }
    let file = TenantFile {
        id: state.id,
        name: state.name,
        kind: state.kind,
        fips: state.fips,
        region: state.region,
        division: state.division,
        counties,
        senators,
        seats,
    };
    let problems = tenant::validate(&file);
    if !problems.is_empty() {
        return Err(RecordsError::Invalid {
            tenant: tenant.to_string(),
            problems,
        });
    }
    Ok(TenantData::new(file))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn tenants_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tenants")
    }

    fn committed(id: &str) -> TenantFile {
        let path = tenants_dir().join(format!("{id}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    #[test]
    fn every_committed_tenant_survives_the_round_trip() {
        let ids: Vec<&str> = crate::registry::ids().collect();
        assert_eq!(ids.len(), 56);
        for id in ids {
            let file = committed(id);
            let records = to_records(&file);
            let back = from_records(id, records.clone())
                .unwrap_or_else(|e| panic!("{id} does not round-trip: {e}"));
            assert_eq!(
                back.file(),
                &file,
                "{id} changed on the way through records"
            );
            // Reading the records in reverse order gives the same tenant: order is in the keys.
            let reversed = from_records(id, records.into_iter().rev()).expect("reverse order");
            assert_eq!(reversed.file(), &file);
        }
    }

    #[test]
    fn sort_keys_are_zero_padded_and_name_their_content() {
        let records = to_records(&committed("TX"));
        let keys: Vec<&str> = records.keys().map(String::as_str).collect();
        assert!(keys.contains(&"STATE"));
        assert!(keys.contains(&"COUNTY#48201"));
        assert!(keys.contains(&"SEAT#07"));
        assert!(keys.contains(&"SEAT#38"));
        assert_eq!(
            records["SEAT#23"], r#"{"district":23,"title":"Representative","representative":null}"#,
            "the vacant seat is stored, with a null representative"
        );
        assert_eq!(
            records["STATE"],
            r#"{"id":"TX","name":"Texas","kind":"state","fips":"48","region":"South","division":"West South Central"}"#
        );
        assert_eq!(
            records.len(),
            1 + 254 + 2 + 38,
            "one record per county, senator and seat"
        );
        let wy = to_records(&committed("WY"));
        assert!(
            wy.contains_key("SEAT#00"),
            "the at-large seat is district 0"
        );
    }

    #[test]
    fn the_same_file_gives_the_same_bytes() {
        let file = committed("CA");
        assert_eq!(to_records(&file), to_records(&file.clone()));
    }

    #[test]
    fn records_of_another_tenant_are_refused() {
        let records = to_records(&committed("CA"));
        let err = from_records("TX", records).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the records of tenant `TX` describe tenant `CA`"
        );
    }

    #[test]
    fn a_partition_without_state_record_is_refused() {
        let mut records = to_records(&committed("WY"));
        records.remove(STATE);
        let err = from_records("WY", records).unwrap_err();
        assert_eq!(err.to_string(), "tenant `WY` has no `STATE` record");
    }

    #[test]
    fn a_record_under_the_wrong_key_is_refused() {
        let mut records = to_records(&committed("WY"));
        let data = records.remove("COUNTY#56001").expect("Albany County");
        records.insert("COUNTY#56999".to_string(), data);
        let err = from_records("WY", records).unwrap_err();
        assert!(
            err.to_string()
                .contains("record `COUNTY#56999` of tenant `WY` holds `56001`"),
            "{err}"
        );
    }

    #[test]
    fn unknown_and_duplicate_and_broken_records_are_refused() {
        let mut records: Vec<(String, String)> = to_records(&committed("WY")).into_iter().collect();
        records.push(("ZIP#82001".to_string(), "{}".to_string()));
        let err = from_records("WY", records.clone()).unwrap_err();
        assert!(matches!(err, RecordsError::UnknownRecord { .. }), "{err}");

        records.pop();
        records.push(records[0].clone());
        let err = from_records("WY", records.clone()).unwrap_err();
        assert!(matches!(err, RecordsError::Duplicate { .. }), "{err}");

        records.pop();
        records.push(("SEAT#01".to_string(), "{\"district\":".to_string()));
        let err = from_records("WY", records).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("record `SEAT#01` of tenant `WY`"),
            "{err}"
        );
    }

    #[test]
    fn a_half_seeded_partition_is_invalid() {
        let mut records = to_records(&committed("TX"));
        records.remove("SEAT#12");
        let err = from_records("TX", records).unwrap_err();
        assert!(matches!(err, RecordsError::Invalid { .. }), "{err}");
        assert!(err.to_string().contains("districts"), "{err}");
    }
}
