//! Query's `KeyConditionExpression`: `#pk = :pk`, optionally `AND` one sort-key condition (`=`,
//! `<`, `<=`, `>`, `>=`, `BETWEEN :a AND :b`, `begins_with(#sk, :prefix)`), with
//! `ExpressionAttributeNames` and `ExpressionAttributeValues` resolved and checked the way
//! DynamoDB checks them (undefined and unused placeholders are errors).

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::error::DynamoError;
use super::value::{KeySchema, KeyType, stored_key};
use crate::store::SortKeyRange;

/// A parsed key condition, in stored-key form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCondition {
    pub pk: String,
    pub range: SortKeyRange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A plain attribute name or a `#name` placeholder.
    Name(String),
    /// A `:value` placeholder.
    Value(String),
    Op(&'static str),
    And,
    Between,
    BeginsWith,
    Open,
    Close,
    Comma,
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Name(s) | Token::Value(s) => s.clone(),
            Token::Op(op) => op.to_string(),
            Token::And => "AND".into(),
            Token::Between => "BETWEEN".into(),
            Token::BeginsWith => "begins_with".into(),
            Token::Open => "(".into(),
            Token::Close => ")".into(),
            Token::Comma => ",".into(),
        }
    }
}

fn syntax_error(token: &str) -> DynamoError {
    DynamoError::validation(format!(
        "Invalid KeyConditionExpression: Syntax error; token: \"{token}\""
    ))
}

fn tokenize(expression: &str) -> Result<Vec<Token>, DynamoError> {
    let chars: Vec<char> = expression.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let word_char = |c: char| c.is_alphanumeric() || c == '_';
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '=' => {
                tokens.push(Token::Op("="));
                i += 1;
            }
            '<' | '>' => {
                let with_eq = chars.get(i + 1) == Some(&'=');
                tokens.push(Token::Op(match (c, with_eq) {
                    ('<', true) => "<=",
                    ('<', false) => "<",
                    (_, true) => ">=",
                    (_, false) => ">",
                }));
                i += 1 + usize::from(with_eq);
            }
            '#' | ':' => {
                let start = i;
                i += 1;
                while i < chars.len() && word_char(chars[i]) {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if text.len() == 1 {
                    return Err(syntax_error(&text));
                }
                tokens.push(if c == '#' {
                    Token::Name(text)
                } else {
                    Token::Value(text)
                });
            }
            c if word_char(c) => {
                let start = i;
                while i < chars.len() && word_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                tokens.push(match word.as_str() {
                    w if w.eq_ignore_ascii_case("and") => Token::And,
                    w if w.eq_ignore_ascii_case("between") => Token::Between,
                    "begins_with" => Token::BeginsWith,
                    _ => Token::Name(word),
                });
            }
            other => return Err(syntax_error(&other.to_string())),
        }
    }
    Ok(tokens)
}

/// One comparison before names and values are resolved.
#[derive(Debug, Clone)]
enum Condition {
    Compare(String, &'static str, String),
    Between(String, String, String),
    BeginsWith(String, String),
}

impl Condition {
    fn name(&self) -> &str {
        match self {
            Condition::Compare(n, _, _) | Condition::Between(n, _, _) => n,
            Condition::BeginsWith(n, _) => n,
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn expect(&mut self, want: &Token) -> Result<(), DynamoError> {
        match self.next() {
            Some(ref t) if t == want => Ok(()),
            Some(t) => Err(syntax_error(&t.text())),
            None => Err(syntax_error("<EOF>")),
        }
    }

    fn name(&mut self) -> Result<String, DynamoError> {
        match self.next() {
            Some(Token::Name(n)) => Ok(n),
            Some(t) => Err(syntax_error(&t.text())),
            None => Err(syntax_error("<EOF>")),
        }
    }

    fn value(&mut self) -> Result<String, DynamoError> {
        match self.next() {
            Some(Token::Value(v)) => Ok(v),
            Some(t) => Err(syntax_error(&t.text())),
            None => Err(syntax_error("<EOF>")),
        }
    }

    fn condition(&mut self) -> Result<Condition, DynamoError> {
        match self.peek() {
            Some(Token::Open) => {
                self.next();
                let condition = self.condition()?;
                self.expect(&Token::Close)?;
                Ok(condition)
            }
            Some(Token::BeginsWith) => {
                self.next();
                self.expect(&Token::Open)?;
                let name = self.name()?;
                self.expect(&Token::Comma)?;
                let value = self.value()?;
                self.expect(&Token::Close)?;
                Ok(Condition::BeginsWith(name, value))
            }
            _ => {
                let name = self.name()?;
                match self.next() {
                    Some(Token::Op(op)) => Ok(Condition::Compare(name, op, self.value()?)),
                    Some(Token::Between) => {
                        let low = self.value()?;
                        self.expect(&Token::And)?;
                        Ok(Condition::Between(name, low, self.value()?))
                    }
                    Some(t) => Err(syntax_error(&t.text())),
                    None => Err(syntax_error("<EOF>")),
                }
            }
        }
    }
}

/// Parses `expression` against the table's key schema.
pub fn key_condition(
    expression: &str,
    names: &HashMap<String, String>,
    values: &HashMap<String, Value>,
    schema: &KeySchema,
) -> Result<KeyCondition, DynamoError> {
    let mut parser = Parser {
        tokens: tokenize(expression)?,
        at: 0,
    };
    if parser.tokens.is_empty() {
        return Err(DynamoError::validation(
            "Invalid KeyConditionExpression: The expression can not be empty;",
        ));
    }
    let mut conditions = vec![parser.condition()?];
    if let Some(token) = parser.next() {
        if token != Token::And {
            return Err(syntax_error(&token.text()));
        }
        conditions.push(parser.condition()?);
    }
    if let Some(token) = parser.next() {
        return Err(syntax_error(&token.text()));
    }

    let mut used_names = BTreeSet::new();
    let mut used_values = BTreeSet::new();
    let mut resolve_name = |name: &str| -> Result<String, DynamoError> {
        if name.starts_with('#') {
            used_names.insert(name.to_string());
            names.get(name).cloned().ok_or_else(|| {
                DynamoError::validation(format!(
                    "Invalid KeyConditionExpression: An expression attribute name used in the document path is not defined; attribute name: {name}"
                ))
            })
        } else {
            Ok(name.to_string())
        }
    };
    let mut resolved = Vec::new();
    for condition in &conditions {
        resolved.push((resolve_name(condition.name())?, condition));
    }
    let mut value_of = |placeholder: &str| -> Result<&Value, DynamoError> {
        used_values.insert(placeholder.to_string());
        values.get(placeholder).ok_or_else(|| {
            DynamoError::validation(format!(
                "Invalid KeyConditionExpression: An expression attribute value used in expression is not defined; attribute value: {placeholder}"
            ))
        })
    };
    let mut values_of = Vec::new();
    for (_, condition) in &resolved {
        let placeholders: Vec<&String> = match condition {
            Condition::Compare(_, _, v) | Condition::BeginsWith(_, v) => vec![v],
            Condition::Between(_, low, high) => vec![low, high],
        };
        let mut found = Vec::new();
        for placeholder in placeholders {
            found.push(value_of(placeholder)?);
        }
        values_of.push(found);
    }
    let unused = |given: Vec<&String>, used: &BTreeSet<String>| -> Vec<String> {
        given
            .into_iter()
            .filter(|k| !used.contains(*k))
            .cloned()
            .collect()
    };
    let unused_names = unused(names.keys().collect(), &used_names);
    if !unused_names.is_empty() {
        return Err(DynamoError::validation(format!(
            "Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
            unused_names.join(", ")
        )));
    }
    let unused_values = unused(values.keys().collect(), &used_values);
    if !unused_values.is_empty() {
        return Err(DynamoError::validation(format!(
            "Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
            unused_values.join(", ")
        )));
    }

    let not_supported = || DynamoError::validation("Query key condition not supported");
    let mut pk = None;
    let mut range = SortKeyRange::All;
    for ((name, condition), values) in resolved.iter().zip(&values_of) {
        if *name == schema.hash.name {
            match condition {
                Condition::Compare(_, "=", _) if pk.is_none() => {
                    pk = Some(condition_key(&schema.hash, values[0])?);
                }
                _ => return Err(not_supported()),
            }
            continue;
        }
        let Some(sort) = schema.range.as_ref().filter(|s| s.name == *name) else {
            return Err(not_supported());
        };
        if range != SortKeyRange::All {
            return Err(not_supported());
        }
        range = match condition {
            Condition::Compare(_, op, _) => {
                let v = condition_key(sort, values[0])?;
                match *op {
                    "=" => SortKeyRange::Eq(v),
                    "<" => SortKeyRange::Lt(v),
                    "<=" => SortKeyRange::Le(v),
                    ">" => SortKeyRange::Gt(v),
                    _ => SortKeyRange::Ge(v),
                }
            }
            Condition::Between(..) => {
                let low = condition_key(sort, values[0])?;
                let high = condition_key(sort, values[1])?;
                if low > high {
                    return Err(DynamoError::validation(
                        "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be greater than or equal to lower bound",
                    ));
                }
                SortKeyRange::Between(low, high)
            }
            Condition::BeginsWith(..) => {
                if sort.kind == KeyType::N {
                    return Err(DynamoError::validation(
                        "Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
                    ));
                }
                SortKeyRange::BeginsWith(condition_key(sort, values[0])?)
            }
        };
    }
    let Some(pk) = pk else {
        return Err(DynamoError::validation(format!(
            "Query condition missed key schema element: {}",
            schema.hash.name
        )));
    };
    Ok(KeyCondition { pk, range })
}

/// A condition's value in stored form; a value of the wrong type is DynamoDB's "Condition
/// parameter type does not match schema type".
fn condition_key(
    attribute: &super::value::KeyAttribute,
    value: &Value,
) -> Result<String, DynamoError> {
    let matches = value
        .as_object()
        .is_some_and(|o| o.len() == 1 && o.contains_key(attribute.kind.as_str()));
    if !matches {
        return Err(DynamoError::validation(
            "One or more parameter values were invalid: Condition parameter type does not match schema type",
        ));
    }
    stored_key(attribute, value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamodb::value::KeyAttribute;

    fn schema() -> KeySchema {
        KeySchema {
            hash: KeyAttribute {
                name: "tenant".into(),
                kind: KeyType::S,
            },
            range: Some(KeyAttribute {
                name: "record".into(),
                kind: KeyType::S,
            }),
        }
    }

    fn parse(expression: &str, names: &[(&str, &str)]) -> Result<KeyCondition, String> {
        let names = names
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut values = HashMap::new();
        values.insert(":t".to_string(), serde_json::json!({"S": "TX"}));
        if expression.contains(":p") {
            values.insert(":p".to_string(), serde_json::json!({"S": "county#"}));
        }
        key_condition(expression, &names, &values, &schema()).map_err(|e| format!("{e:?}"))
    }

    #[test]
    fn partition_and_sort_conditions_parse() {
        assert_eq!(
            parse("#pk = :t", &[("#pk", "tenant")]).unwrap(),
            KeyCondition {
                pk: "TX".into(),
                range: SortKeyRange::All
            }
        );
        assert_eq!(
            parse("tenant = :t AND begins_with(#sk, :p)", &[("#sk", "record")])
                .unwrap()
                .range,
            SortKeyRange::BeginsWith("county#".into())
        );
        assert_eq!(
            parse("(record >= :p) and tenant=:t", &[]).unwrap().range,
            SortKeyRange::Ge("county#".into())
        );
    }

    #[test]
    fn bad_conditions_are_rejected() {
        for (expression, names) in [
            ("record = :t", vec![]),
            ("tenant < :t", vec![]),
            ("#pk = :t", vec![]),
            ("tenant = :t", vec![("#unused", "x")]),
            ("tenant = :t AND", vec![]),
            ("tenant = :t OR record = :p", vec![]),
            ("data = :t", vec![]),
        ] {
            assert!(
                parse(expression, &names).is_err(),
                "{expression} was accepted"
            );
        }
    }
}
