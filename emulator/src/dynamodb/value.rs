//! Items and their keys: the JSON shape of attribute values (`{"S":..}`, `{"N":..}`, `{"M":..}`,
//! ...), key schemas, keys in their stored, order-preserving form, and item sizes as DynamoDB
//! counts them towards its 400 KB item and 1 MB page limits.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::DynamoError;

/// An item (or a key) as DynamoDB JSON: attribute name to attribute value.
pub type Item = serde_json::Map<String, Value>;

/// The largest item DynamoDB stores.
pub const MAX_ITEM_BYTES: i64 = 400 * 1024;

/// The type of a key attribute. DynamoDB also allows binary keys; Represent has no use for them,
/// so the emulator refuses them at CreateTable rather than storing them half-right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyType {
    S,
    N,
}

impl KeyType {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::S => "S",
            KeyType::N => "N",
        }
    }
}

/// One key attribute of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAttribute {
    pub name: String,
    pub kind: KeyType,
}

/// A table's primary key: a partition (HASH) key and an optional sort (RANGE) key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySchema {
    pub hash: KeyAttribute,
    pub range: Option<KeyAttribute>,
}

/// A key in stored form: partition and sort key text (the sort key is empty on a table without
/// one). Strings are stored as they are, numbers in an order-preserving encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredKey {
    pub pk: String,
    pub sk: String,
}

const KEY_MISMATCH: &str = "The provided key element does not match the schema";

impl KeySchema {
    /// The key of an item being put: the key attributes must be there, other attributes may be.
    pub fn key_of_item(&self, item: &Item) -> Result<StoredKey, DynamoError> {
        let part = |attribute: &KeyAttribute| match item.get(&attribute.name) {
            Some(value) => stored_key(attribute, value),
            None => Err(DynamoError::validation(format!(
                "One or more parameter values were invalid: Missing the key {} in the item",
                attribute.name
            ))),
        };
        key_sizes(self, item)?;
        Ok(StoredKey {
            pk: part(&self.hash)?,
            sk: match &self.range {
                Some(range) => part(range)?,
                None => String::new(),
            },
        })
    }

    /// The key named by a `Key` (GetItem, DeleteItem, DeleteRequest, ExclusiveStartKey): exactly
    /// the key attributes, nothing else.
    pub fn key_of_key(&self, key: &Item) -> Result<StoredKey, DynamoError> {
        let expected = 1 + usize::from(self.range.is_some());
        if key.len() != expected {
            return Err(DynamoError::validation(KEY_MISMATCH));
        }
        let part = |attribute: &KeyAttribute| match key.get(&attribute.name) {
            Some(value) => stored_key(attribute, value),
            None => Err(DynamoError::validation(KEY_MISMATCH)),
        };
        key_sizes(self, key)?;
        Ok(StoredKey {
            pk: part(&self.hash)?,
            sk: match &self.range {
                Some(range) => part(range)?,
                None => String::new(),
            },
        })
    }

    /// The key attributes of an item, as `LastEvaluatedKey` and `UnprocessedItems` carry them.
    pub fn key_attributes(&self, item: &Item) -> Item {
        let mut key = Item::new();
        for attribute in std::iter::once(&self.hash).chain(self.range.as_ref()) {
            if let Some(value) = item.get(&attribute.name) {
                key.insert(attribute.name.clone(), value.clone());
            }
        }
        key
    }
}

/// DynamoDB's limits on key values: 2,048 bytes for a partition key, 1,024 for a sort key.
fn key_sizes(schema: &KeySchema, item: &Item) -> Result<(), DynamoError> {
    let size = |attribute: &KeyAttribute| item.get(&attribute.name).map_or(0, value_size);
    if size(&schema.hash) > 2048 {
        return Err(DynamoError::validation(
            "One or more parameter values were invalid: Size of hashkey has exceeded the maximum size limit of2048 bytes",
        ));
    }
    if schema
        .range
        .as_ref()
        .is_some_and(|range| size(range) > 1024)
    {
        return Err(DynamoError::validation(
            "One or more parameter values were invalid: Aggregated size of all range keys has exceeded the size limit of 1024 bytes",
        ));
    }
    Ok(())
}

/// The stored form of one key attribute's value, checking its type against the schema.
pub fn stored_key(attribute: &KeyAttribute, value: &Value) -> Result<String, DynamoError> {
    let actual = single_type(value)?;
    if actual != attribute.kind.as_str() {
        return Err(DynamoError::validation(format!(
            "One or more parameter values were invalid: Type mismatch for key {} expected: {} actual: {actual}",
            attribute.name,
            attribute.kind.as_str()
        )));
    }
    let text = value
        .get(actual)
        .and_then(Value::as_str)
        .ok_or_else(|| DynamoError::serialization(format!("{actual} must be a string")))?;
    match attribute.kind {
        KeyType::S if text.is_empty() => Err(DynamoError::validation(format!(
            "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: {}",
            attribute.name
        ))),
        KeyType::S => Ok(text.to_string()),
        KeyType::N => number_key(text),
    }
}

/// The one data type member of an attribute value (`"S"`, `"N"`, `"M"`, ...).
fn single_type(value: &Value) -> Result<&str, DynamoError> {
    let object = value.as_object().ok_or_else(|| {
        DynamoError::serialization("an attribute value must be an object such as {\"S\":\"x\"}")
    })?;
    let mut members = object.keys();
    match (members.next(), members.next()) {
        (Some(kind), None) => Ok(kind.as_str()),
        (None, _) => Err(DynamoError::validation(
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes",
        )),
        (Some(_), Some(_)) => Err(DynamoError::validation(
            "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
        )),
    }
}

/// Checks that every attribute of `item` is a well-formed attribute value.
pub fn validate_item(item: &Item) -> Result<(), DynamoError> {
    item.values().try_for_each(validate_value)
}

fn validate_value(value: &Value) -> Result<(), DynamoError> {
    let kind = single_type(value)?;
    let inner = &value[kind];
    let strings = |what: &str| -> Result<Vec<&str>, DynamoError> {
        let list = inner
            .as_array()
            .ok_or_else(|| DynamoError::serialization(format!("{what} must be a list")))?;
        if list.is_empty() {
            return Err(DynamoError::validation(
                "One or more parameter values were invalid: An string set  may not be empty",
            ));
        }
        list.iter()
            .map(|v| {
                v.as_str().ok_or_else(|| {
                    DynamoError::serialization(format!("{what} members must be strings"))
                })
            })
            .collect()
    };
    match kind {
        "S" | "B" if inner.is_string() => Ok(()),
        "N" => match inner.as_str() {
            Some(text) => number_key(text).map(|_| ()),
            None => Err(DynamoError::serialization("N must be a string")),
        },
        "SS" | "BS" => strings(kind).map(|_| ()),
        "NS" => strings(kind)?
            .into_iter()
            .try_for_each(|n| number_key(n).map(|_| ())),
        "M" => match inner.as_object() {
            Some(map) => map.values().try_for_each(validate_value),
            None => Err(DynamoError::serialization("M must be a map")),
        },
        "L" => match inner.as_array() {
            Some(list) => list.iter().try_for_each(validate_value),
            None => Err(DynamoError::serialization("L must be a list")),
        },
        "BOOL" if inner.is_boolean() => Ok(()),
        "NULL" if inner == &Value::Bool(true) => Ok(()),
        "NULL" => Err(DynamoError::validation(
            "One or more parameter values were invalid: Null attribute value types must have the value of true",
        )),
        "S" | "B" | "BOOL" => Err(DynamoError::serialization(format!(
            "{kind} has the wrong JSON type"
        ))),
        other => Err(DynamoError::serialization(format!(
            "unknown attribute value type {other}"
        ))),
    }
}

/// The size of an item as DynamoDB meters it: attribute names plus values, with a few bytes of
/// overhead per nested map or list element.
pub fn item_size(item: &Item) -> i64 {
    item.iter()
        .map(|(name, value)| name.len() as i64 + value_size(value))
        .sum()
}

fn value_size(value: &Value) -> i64 {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let text_len = |v: &Value| v.as_str().map_or(0, str::len) as i64;
    let number_len = |v: &Value| text_len(v) / 2 + 1;
    let binary_len = |v: &Value| text_len(v) * 3 / 4;
    let each = |f: &dyn Fn(&Value) -> i64| inner.as_array().map_or(0, |l| l.iter().map(f).sum());
    match kind.as_str() {
        "S" => text_len(inner),
        "N" => number_len(inner),
        "B" => binary_len(inner),
        "SS" => each(&text_len),
        "NS" => each(&number_len),
        "BS" => each(&binary_len),
        "M" => {
            3 + inner.as_object().map_or(0, |m| {
                m.iter()
                    .map(|(k, v)| k.len() as i64 + value_size(v) + 1)
                    .sum()
            })
        }
        "L" => 3 + each(&|v| value_size(v) + 1),
        _ => 1,
    }
}

/// The order-preserving text of a DynamoDB number, so that SQLite's byte-wise ordering of the
/// stored sort key is numeric ordering, and `1`, `1.0` and `10E-1` are one key.
///
/// Zero is `1`. A positive number `0.d1d2... x 10^e` (first digit non-zero, no trailing zeros)
/// is `2`, then `e + 500` in three digits, then the digits; a negative one is `0`, then
/// `499 - e` in three digits, then the nine's complement of the digits and `~`, which sorts
/// after every digit so that a longer (larger in magnitude) negative number sorts first.
pub fn number_key(text: &str) -> Result<String, DynamoError> {
    let invalid = || {
        DynamoError::validation(format!(
            "The parameter cannot be converted to a numeric value: {text}"
        ))
    };
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (
            &rest[..at],
            rest[at + 1..].parse::<i64>().map_err(|_| invalid())?,
        ),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(invalid());
    }
    let digits: String = format!("{int}{frac}");
    let leading = digits.bytes().take_while(|&b| b == b'0').count();
    let significant = digits[leading..].trim_end_matches('0');
    if significant.is_empty() {
        return Ok("1".to_string());
    }
    if significant.len() > 38 {
        return Err(DynamoError::validation(
            "Attempting to store more than 38 significant digits in a Number",
        ));
    }
    // The value is 0.<significant> x 10^point.
    let point = int.len() as i64 - leading as i64 + exponent;
    if point > 126 {
        return Err(DynamoError::validation(
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
        ));
    }
    if point < -129 {
        return Err(DynamoError::validation(
            "Number underflow. Attempting to store a number with magnitude smaller than supported range",
        ));
    }
    if negative {
        let complement: String = significant
            .bytes()
            .map(|b| char::from(b'9' - (b - b'0')))
            .collect();
        Ok(format!("0{:03}{complement}~", 499 - point))
    } else {
        Ok(format!("2{:03}{significant}", point + 500))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_keys_sort_numerically_and_compare_by_value() {
        let numbers = [
            "-1e10", "-12", "-11.5", "-1.2", "-1.1", "-1", "-0.5", "0", "0.001", "0.5", "1", "1.1",
            "1.2", "2", "10", "11.5", "100", "1e10",
        ];
        let keys: Vec<String> = numbers.iter().map(|n| number_key(n).unwrap()).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(number_key("1").unwrap(), number_key("1.0").unwrap());
        assert_eq!(number_key("1").unwrap(), number_key("10E-1").unwrap());
        assert_eq!(number_key("-0").unwrap(), number_key("0.00").unwrap());
    }

    #[test]
    fn malformed_numbers_are_rejected() {
        for text in ["", "abc", "1.2.3", "--1", "1e", ".", "1e400"] {
            assert!(number_key(text).is_err(), "{text:?} was accepted");
        }
    }
}
