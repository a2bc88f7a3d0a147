//! DynamoDB's expression language, one grammar for all of its uses: key conditions (Query),
//! conditions (`ConditionExpression`, `FilterExpression`), update expressions (SET, REMOVE,
//! ADD, DELETE) and projection expressions. `#name` and `:value` placeholders are resolved
//! while parsing, against one [`Placeholders`] per request, so that names and values a request
//! supplies but no expression uses are reported the way DynamoDB reports them.
//!
//! Evaluation works on items in DynamoDB JSON (`{"S":"x"}`, `{"N":"1"}`, ...): numbers compare by
//! value, sets compare as sets.

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::error::DynamoError;
use super::value::{Item, KeyAttribute, KeySchema, KeyType, number_key, stored_key};
use crate::store::SortKeyRange;

/// Which parameter an expression came in, for DynamoDB's `Invalid <Kind>Expression: ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    KeyCondition,
    Condition,
    Filter,
    Update,
    Projection,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::KeyCondition => "KeyConditionExpression",
            Kind::Condition => "ConditionExpression",
            Kind::Filter => "FilterExpression",
            Kind::Update => "UpdateExpression",
            Kind::Projection => "ProjectionExpression",
        }
    }
}

/// One step of a document path: an attribute (or map key) name, or a list index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Name(String),
    Index(usize),
}

/// A document path with its placeholders resolved: `a.b[2].c`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<Step>);

impl Path {
    /// The top-level attribute the path starts at.
    pub fn attribute(&self) -> &str {
        match self.0.first() {
            Some(Step::Name(name)) => name,
            _ => "",
        }
    }

    fn render(&self) -> String {
        let mut text = String::new();
        for (i, step) in self.0.iter().enumerate() {
            match step {
                Step::Name(name) if i == 0 => text.push_str(name),
                Step::Name(name) => {
                    text.push('.');
                    text.push_str(name);
                }
                Step::Index(n) => text.push_str(&format!("[{n}]")),
            }
        }
        text
    }

    /// Whether one path is the other or lies inside it (DynamoDB's "paths overlap").
    fn overlaps(&self, other: &Path) -> bool {
        let n = self.0.len().min(other.0.len());
        self.0[..n] == other.0[..n]
    }
}

/// An operand of a comparison or function.
#[derive(Debug, Clone)]
pub enum Operand {
    Path(Path),
    Value(Value),
    Size(Path),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A condition (ConditionExpression, FilterExpression, or the parts of a key condition).
#[derive(Debug, Clone)]
pub enum Condition {
    Compare(Operand, Comparator, Operand),
    Between(Operand, Operand, Operand),
    In(Operand, Vec<Operand>),
    AttributeExists(Path),
    AttributeNotExists(Path),
    AttributeType(Path, Operand),
    BeginsWith(Operand, Operand),
    Contains(Operand, Operand),
    And(Box<Condition>, Box<Condition>),
    Or(Box<Condition>, Box<Condition>),
    Not(Box<Condition>),
}

/// The right-hand side of a SET action.
#[derive(Debug, Clone)]
pub enum SetValue {
    Operand(Operand),
    IfNotExists(Path, Box<SetValue>),
    ListAppend(Box<SetValue>, Box<SetValue>),
    Plus(Box<SetValue>, Box<SetValue>),
    Minus(Box<SetValue>, Box<SetValue>),
}

/// One action of an update expression.
#[derive(Debug, Clone)]
pub enum Action {
    Set(Path, SetValue),
    Remove(Path),
    Add(Path, Value),
    Delete(Path, Value),
}

/// The `ExpressionAttributeNames` and `ExpressionAttributeValues` of one request, and which of
/// them its expressions used.
#[derive(Debug, Default)]
pub struct Placeholders {
    names: HashMap<String, String>,
    values: HashMap<String, Value>,
    used_names: BTreeSet<String>,
    used_values: BTreeSet<String>,
}

impl Placeholders {
    pub fn new(names: HashMap<String, String>, values: HashMap<String, Value>) -> Placeholders {
        Placeholders {
            names,
            values,
            ..Placeholders::default()
        }
    }

    /// Checks that the request uses each placeholder it defines; call after every expression of
    /// the request is parsed. `prefixed` adds DynamoDB's `1 validation error detected: `, which
    /// it puts on this message for writes (UpdateItem) and not for reads.
    pub fn finish(&self, prefixed: bool) -> Result<(), DynamoError> {
        let prefix = if prefixed {
            "1 validation error detected: "
        } else {
            ""
        };
        let mut unused: Vec<&String> = self
            .names
            .keys()
            .filter(|k| !self.used_names.contains(*k))
            .collect();
        unused.sort();
        if !unused.is_empty() {
            return Err(DynamoError::validation(format!(
                "{prefix}Value provided in ExpressionAttributeNames unused in expressions: keys: {{{}}}",
                join(&unused)
            )));
        }
        let mut unused: Vec<&String> = self
            .values
            .keys()
            .filter(|k| !self.used_values.contains(*k))
            .collect();
        unused.sort();
        if !unused.is_empty() {
            return Err(DynamoError::validation(format!(
                "{prefix}Value provided in ExpressionAttributeValues unused in expressions: keys: {{{}}}",
                join(&unused)
            )));
        }
        Ok(())
    }
}

fn join(keys: &[&String]) -> String {
    keys.iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A plain identifier: an attribute name, a keyword or a function name.
    Word(String),
    /// `#name`.
    Name(String),
    /// `:value`.
    Value(String),
    /// A list index inside `[...]`.
    Number(String),
    Sym(&'static str),
}

impl Token {
    fn text(&self) -> String {
        match self {
            Token::Word(s) | Token::Name(s) | Token::Value(s) | Token::Number(s) => s.clone(),
            Token::Sym(s) => s.to_string(),
        }
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self, Token::Word(w) if w.eq_ignore_ascii_case(word))
    }
}

fn tokenize(kind: Kind, expression: &str) -> Result<Vec<Token>, DynamoError> {
    let chars: Vec<char> = expression.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let word_char = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        let c = chars[i];
        let two: String = chars[i..chars.len().min(i + 2)].iter().collect();
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if let Some(sym) = ["<>", "<=", ">="].into_iter().find(|s| *s == two) {
            tokens.push(Token::Sym(sym));
            i += 2;
            continue;
        }
        if let Some(sym) = ["=", "<", ">", "(", ")", "[", "]", ",", ".", "+", "-"]
            .into_iter()
            .find(|s| s.starts_with(c))
        {
            tokens.push(Token::Sym(sym));
            i += 1;
            continue;
        }
        if c == '#' || c == ':' || word_char(c) {
            let start = i;
            i += 1;
            while i < chars.len() && word_char(chars[i]) {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            tokens.push(match c {
                '#' if text.len() > 1 => Token::Name(text),
                ':' if text.len() > 1 => Token::Value(text),
                '#' | ':' => return Err(syntax_error(kind, &text)),
                c if c.is_ascii_digit() => Token::Number(text),
                _ => Token::Word(text),
            });
            continue;
        }
        return Err(syntax_error(kind, &c.to_string()));
    }
    Ok(tokens)
}

fn syntax_error(kind: Kind, token: &str) -> DynamoError {
    DynamoError::validation(format!(
        "Invalid {}: Syntax error; token: \"{token}\"",
        kind.label()
    ))
}

fn invalid(kind: Kind, detail: impl std::fmt::Display) -> DynamoError {
    DynamoError::validation(format!("Invalid {}: {detail}", kind.label()))
}

/// Functions a condition may call; `size` is an operand, not a condition.
const CONDITION_FUNCTIONS: [&str; 5] = [
    "attribute_exists",
    "attribute_not_exists",
    "attribute_type",
    "begins_with",
    "contains",
];

struct Parser<'a> {
    kind: Kind,
    tokens: Vec<Token>,
    at: usize,
    placeholders: &'a mut Placeholders,
}

impl<'a> Parser<'a> {
    fn new(
        kind: Kind,
        expression: &str,
        placeholders: &'a mut Placeholders,
    ) -> Result<Parser<'a>, DynamoError> {
        let tokens = tokenize(kind, expression)?;
        if tokens.is_empty() {
            return Err(invalid(kind, "The expression can not be empty;"));
        }
        Ok(Parser {
            kind,
            tokens,
            at: 0,
            placeholders,
        })
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.at + ahead)
    }

    fn next(&mut self) -> Result<Token, DynamoError> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token.ok_or_else(|| syntax_error(self.kind, "<EOF>"))
    }

    fn unexpected(&self, token: &Token) -> DynamoError {
        syntax_error(self.kind, &token.text())
    }

    fn expect(&mut self, sym: &'static str) -> Result<(), DynamoError> {
        match self.next()? {
            Token::Sym(s) if s == sym => Ok(()),
            other => Err(self.unexpected(&other)),
        }
    }

    fn eat(&mut self, sym: &'static str) -> bool {
        if self.peek() == Some(&Token::Sym(sym)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn end(&mut self) -> Result<(), DynamoError> {
        match self.peek() {
            None => Ok(()),
            Some(token) => Err(self.unexpected(token)),
        }
    }

    fn name(&mut self, token: Token) -> Result<String, DynamoError> {
        match token {
            Token::Word(word) => Ok(word),
            Token::Name(placeholder) => {
                let resolved = self.placeholders.names.get(&placeholder).cloned();
                self.placeholders.used_names.insert(placeholder.clone());
                resolved.ok_or_else(|| {
                    invalid(
                        self.kind,
                        format!(
                            "An expression attribute name used in the document path is not defined; attribute name: {placeholder}"
                        ),
                    )
                })
            }
            other => Err(self.unexpected(&other)),
        }
    }

    fn value(&mut self, placeholder: &str) -> Result<Value, DynamoError> {
        let resolved = self.placeholders.values.get(placeholder).cloned();
        self.placeholders
            .used_values
            .insert(placeholder.to_string());
        resolved.ok_or_else(|| {
            invalid(
                self.kind,
                format!(
                    "An expression attribute value used in expression is not defined; attribute value: {placeholder}"
                ),
            )
        })
    }

    fn path(&mut self) -> Result<Path, DynamoError> {
        let first = self.next()?;
        let mut steps = vec![Step::Name(self.name(first)?)];
        loop {
            if self.eat(".") {
                let token = self.next()?;
                steps.push(Step::Name(self.name(token)?));
            } else if self.eat("[") {
                match self.next()? {
                    Token::Number(n) => {
                        let index = n.parse().map_err(|_| syntax_error(self.kind, &n))?;
                        steps.push(Step::Index(index));
                    }
                    other => return Err(self.unexpected(&other)),
                }
                self.expect("]")?;
            } else {
                return Ok(Path(steps));
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, DynamoError> {
        match self.peek().cloned() {
            Some(Token::Value(placeholder)) => {
                self.at += 1;
                Ok(Operand::Value(self.value(&placeholder)?))
            }
            Some(token @ Token::Word(_)) if self.peek_at(1) == Some(&Token::Sym("(")) => {
                if token.is_word("size") {
                    self.at += 2;
                    let path = self.path()?;
                    self.expect(")")?;
                    Ok(Operand::Size(path))
                } else {
                    Err(invalid(
                        self.kind,
                        format!("Invalid function name; function: {}", token.text()),
                    ))
                }
            }
            Some(_) => Ok(Operand::Path(self.path()?)),
            None => Err(syntax_error(self.kind, "<EOF>")),
        }
    }

    fn condition(&mut self) -> Result<Condition, DynamoError> {
        let mut left = self.conjunction()?;
        while self.peek().is_some_and(|t| t.is_word("or")) {
            self.at += 1;
            let right = self.conjunction()?;
            left = Condition::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Condition, DynamoError> {
        let mut left = self.negation()?;
        while self.peek().is_some_and(|t| t.is_word("and")) {
            self.at += 1;
            let right = self.negation()?;
            left = Condition::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn negation(&mut self) -> Result<Condition, DynamoError> {
        if self.peek().is_some_and(|t| t.is_word("not")) {
            self.at += 1;
            return Ok(Condition::Not(Box::new(self.negation()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Condition, DynamoError> {
        if self.eat("(") {
            let condition = self.condition()?;
            self.expect(")")?;
            return Ok(condition);
        }
        if let Some(Token::Word(word)) = self.peek().cloned()
            && self.peek_at(1) == Some(&Token::Sym("("))
            && CONDITION_FUNCTIONS
                .iter()
                .any(|f| f.eq_ignore_ascii_case(&word))
        {
            self.at += 2;
            let function = word.to_ascii_lowercase();
            let condition = match function.as_str() {
                "attribute_exists" => Condition::AttributeExists(self.path()?),
                "attribute_not_exists" => Condition::AttributeNotExists(self.path()?),
                "attribute_type" => {
                    let path = self.path()?;
                    self.expect(",")?;
                    Condition::AttributeType(path, self.operand()?)
                }
                "begins_with" => {
                    let subject = self.operand()?;
                    self.expect(",")?;
                    Condition::BeginsWith(subject, self.operand()?)
                }
                _ => {
                    let subject = self.operand()?;
                    self.expect(",")?;
                    Condition::Contains(subject, self.operand()?)
                }
            };
            self.expect(")")?;
            return Ok(condition);
        }
        let left = self.operand()?;
        let token = self.next()?;
        let comparator = match &token {
            Token::Sym("=") => Comparator::Eq,
            Token::Sym("<>") => Comparator::Ne,
            Token::Sym("<") => Comparator::Lt,
            Token::Sym("<=") => Comparator::Le,
            Token::Sym(">") => Comparator::Gt,
            Token::Sym(">=") => Comparator::Ge,
            t if t.is_word("between") => {
                let low = self.operand()?;
                match self.next()? {
                    t if t.is_word("and") => {}
                    other => return Err(self.unexpected(&other)),
                }
                return Ok(Condition::Between(left, low, self.operand()?));
            }
            t if t.is_word("in") => {
                self.expect("(")?;
                let mut list = vec![self.operand()?];
                while self.eat(",") {
                    list.push(self.operand()?);
                }
                self.expect(")")?;
                return Ok(Condition::In(left, list));
            }
            other => return Err(self.unexpected(other)),
        };
        Ok(Condition::Compare(left, comparator, self.operand()?))
    }

    fn set_operand(&mut self) -> Result<SetValue, DynamoError> {
        if let Some(token @ Token::Word(_)) = self.peek().cloned()
            && self.peek_at(1) == Some(&Token::Sym("("))
        {
            self.at += 2;
            let value = if token.is_word("if_not_exists") {
                let path = self.path()?;
                self.expect(",")?;
                SetValue::IfNotExists(path, Box::new(self.set_operand()?))
            } else if token.is_word("list_append") {
                let first = self.set_operand()?;
                self.expect(",")?;
                SetValue::ListAppend(Box::new(first), Box::new(self.set_operand()?))
            } else {
                return Err(invalid(
                    self.kind,
                    format!("Invalid function name; function: {}", token.text()),
                ));
            };
            self.expect(")")?;
            return Ok(value);
        }
        match self.peek().cloned() {
            Some(Token::Value(placeholder)) => {
                self.at += 1;
                Ok(SetValue::Operand(Operand::Value(self.value(&placeholder)?)))
            }
            _ => Ok(SetValue::Operand(Operand::Path(self.path()?))),
        }
    }

    fn set_value(&mut self) -> Result<SetValue, DynamoError> {
        let left = self.set_operand()?;
        if self.eat("+") {
            return Ok(SetValue::Plus(
                Box::new(left),
                Box::new(self.set_operand()?),
            ));
        }
        if self.eat("-") {
            return Ok(SetValue::Minus(
                Box::new(left),
                Box::new(self.set_operand()?),
            ));
        }
        Ok(left)
    }

    fn value_operand(&mut self) -> Result<Value, DynamoError> {
        match self.next()? {
            Token::Value(placeholder) => self.value(&placeholder),
            other => Err(self.unexpected(&other)),
        }
    }
}

/// Parses a ConditionExpression or FilterExpression.
pub fn condition(
    kind: Kind,
    expression: &str,
    placeholders: &mut Placeholders,
) -> Result<Condition, DynamoError> {
    let mut parser = Parser::new(kind, expression, placeholders)?;
    let condition = parser.condition()?;
    parser.end()?;
    Ok(condition)
}

/// Parses a ProjectionExpression: document paths separated by commas.
pub fn projection(
    expression: &str,
    placeholders: &mut Placeholders,
) -> Result<Vec<Path>, DynamoError> {
    let mut parser = Parser::new(Kind::Projection, expression, placeholders)?;
    let mut paths = vec![parser.path()?];
    while parser.eat(",") {
        paths.push(parser.path()?);
    }
    parser.end()?;
    for (i, a) in paths.iter().enumerate() {
        if let Some(b) = paths[..i].iter().find(|b| a.overlaps(b)) {
            return Err(overlap(Kind::Projection, b, a));
        }
    }
    Ok(paths)
}

fn overlap(kind: Kind, one: &Path, two: &Path) -> DynamoError {
    invalid(
        kind,
        format!(
            "Two document paths overlap with each other; must remove or rewrite one of these paths; path one: [{}], path two: [{}]",
            one.render(),
            two.render()
        ),
    )
}

/// Parses an UpdateExpression into its actions, in the order written.
pub fn update(
    expression: &str,
    placeholders: &mut Placeholders,
) -> Result<Vec<Action>, DynamoError> {
    let kind = Kind::Update;
    let mut parser = Parser::new(kind, expression, placeholders)?;
    let mut actions = Vec::new();
    let mut sections = BTreeSet::new();
    while let Some(token) = parser.peek().cloned() {
        let section = match &token {
            Token::Word(w) => w.to_ascii_uppercase(),
            _ => return Err(parser.unexpected(&token)),
        };
        if !matches!(section.as_str(), "SET" | "REMOVE" | "ADD" | "DELETE") {
            return Err(parser.unexpected(&token));
        }
        if !sections.insert(section.clone()) {
            return Err(invalid(
                kind,
                format!("The \"{section}\" section can only be used once in an update expression;"),
            ));
        }
        parser.at += 1;
        loop {
            let path = parser.path()?;
            actions.push(match section.as_str() {
                "SET" => {
                    parser.expect("=")?;
                    Action::Set(path, parser.set_value()?)
                }
                "REMOVE" => Action::Remove(path),
                "ADD" => Action::Add(path, parser.value_operand()?),
                _ => Action::Delete(path, parser.value_operand()?),
            });
            if !parser.eat(",") {
                break;
            }
        }
    }
    let paths: Vec<&Path> = actions
        .iter()
        .map(|a| match a {
            Action::Set(p, _) | Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _) => p,
        })
        .collect();
    for (i, a) in paths.iter().enumerate() {
        if let Some(b) = paths[..i].iter().find(|b| a.overlaps(b)) {
            return Err(overlap(kind, b, a));
        }
    }
    Ok(actions)
}

/// A parsed key condition, in stored-key form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCondition {
    pub pk: String,
    pub range: SortKeyRange,
}

/// Parses a KeyConditionExpression against the key schema of the table or index queried:
/// an equality on the partition key, optionally AND one condition on the sort key, in any
/// order and with any parentheses (boto3 wraps each part in its own).
pub fn key_condition(
    expression: &str,
    placeholders: &mut Placeholders,
    schema: &KeySchema,
) -> Result<KeyCondition, DynamoError> {
    let kind = Kind::KeyCondition;
    let parsed = condition(kind, expression, placeholders)?;
    let mut parts = Vec::new();
    flatten_and(parsed, &mut parts)?;
    let not_supported = || DynamoError::validation("Query key condition not supported");
    let mut pk = None;
    let mut range = None;
    for part in parts {
        let attribute = match &part {
            Condition::Compare(Operand::Path(p), _, Operand::Value(_))
            | Condition::Between(Operand::Path(p), Operand::Value(_), Operand::Value(_))
            | Condition::BeginsWith(Operand::Path(p), Operand::Value(_))
                if p.0.len() == 1 =>
            {
                p.attribute().to_string()
            }
            _ => return Err(not_supported()),
        };
        if attribute == schema.hash.name {
            match part {
                Condition::Compare(_, Comparator::Eq, Operand::Value(v)) if pk.is_none() => {
                    pk = Some(condition_key(&schema.hash, &v)?);
                }
                _ => return Err(not_supported()),
            }
            continue;
        }
        let Some(sort) = schema.range.as_ref().filter(|s| s.name == attribute) else {
            return Err(DynamoError::validation(format!(
                "Query condition missed key schema element: {}",
                schema
                    .range
                    .as_ref()
                    .map_or(schema.hash.name.as_str(), |r| r.name.as_str())
            )));
        };
        if range.is_some() {
            return Err(not_supported());
        }
        range = Some(match part {
            Condition::Compare(_, op, Operand::Value(v)) => {
                let v = condition_key(sort, &v)?;
                match op {
                    Comparator::Eq => SortKeyRange::Eq(v),
                    Comparator::Lt => SortKeyRange::Lt(v),
                    Comparator::Le => SortKeyRange::Le(v),
                    Comparator::Gt => SortKeyRange::Gt(v),
                    Comparator::Ge => SortKeyRange::Ge(v),
                    Comparator::Ne => {
                        return Err(invalid(
                            kind,
                            "Invalid operator used in KeyConditionExpression: <>",
                        ));
                    }
                }
            }
            Condition::Between(_, Operand::Value(low), Operand::Value(high)) => {
                let low = condition_key(sort, &low)?;
                let high = condition_key(sort, &high)?;
                if low > high {
                    return Err(invalid(
                        kind,
                        "The BETWEEN operator requires upper bound to be greater than or equal to lower bound",
                    ));
                }
                SortKeyRange::Between(low, high)
            }
            Condition::BeginsWith(_, Operand::Value(v)) => {
                if sort.kind == KeyType::N {
                    return Err(invalid(
                        kind,
                        "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N",
                    ));
                }
                SortKeyRange::BeginsWith(condition_key(sort, &v)?)
            }
            _ => return Err(not_supported()),
        });
    }
    let Some(pk) = pk else {
        return Err(DynamoError::validation(format!(
            "Query condition missed key schema element: {}",
            schema.hash.name
        )));
    };
    Ok(KeyCondition {
        pk,
        range: range.unwrap_or(SortKeyRange::All),
    })
}

fn flatten_and(condition: Condition, parts: &mut Vec<Condition>) -> Result<(), DynamoError> {
    match condition {
        Condition::And(a, b) => {
            flatten_and(*a, parts)?;
            flatten_and(*b, parts)
        }
        Condition::Or(..) => Err(invalid(
            Kind::KeyCondition,
            "Invalid operator used in KeyConditionExpression: OR",
        )),
        Condition::Not(..) => Err(invalid(
            Kind::KeyCondition,
            "Invalid operator used in KeyConditionExpression: NOT",
        )),
        Condition::In(..) => Err(invalid(
            Kind::KeyCondition,
            "Invalid operator used in KeyConditionExpression: IN",
        )),
        Condition::AttributeExists(_)
        | Condition::AttributeNotExists(_)
        | Condition::AttributeType(..)
        | Condition::Contains(..) => Err(invalid(
            Kind::KeyCondition,
            "Invalid operator used in KeyConditionExpression: a function other than begins_with",
        )),
        other => {
            parts.push(other);
            Ok(())
        }
    }
}

/// A condition's value in stored form; a value of the wrong type is DynamoDB's "Condition
/// parameter type does not match schema type".
fn condition_key(attribute: &KeyAttribute, value: &Value) -> Result<String, DynamoError> {
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

// Evaluation.

/// The value at `path` in `item`, if there is one.
pub fn resolve<'v>(item: &'v Item, path: &Path) -> Option<&'v Value> {
    let mut steps = path.0.iter();
    let mut current = match steps.next()? {
        Step::Name(name) => item.get(name)?,
        Step::Index(_) => return None,
    };
    for step in steps {
        current = match step {
            Step::Name(name) => current.get("M")?.get(name)?,
            Step::Index(i) => current.get("L")?.get(*i)?,
        };
    }
    Some(current)
}

fn operand_value(item: &Item, operand: &Operand) -> Option<Value> {
    match operand {
        Operand::Path(path) => resolve(item, path).cloned(),
        Operand::Value(value) => Some(value.clone()),
        Operand::Size(path) => {
            let (kind, inner) = type_of(resolve(item, path)?)?;
            let size = match kind {
                "S" => inner.as_str()?.len(),
                "B" => decode_binary(inner)?.len(),
                "SS" | "NS" | "BS" | "L" => inner.as_array()?.len(),
                "M" => inner.as_object()?.len(),
                _ => return None,
            };
            Some(serde_json::json!({ "N": size.to_string() }))
        }
    }
}

fn type_of(value: &Value) -> Option<(&str, &Value)> {
    let object = value.as_object()?;
    let (kind, inner) = object.iter().next()?;
    Some((kind.as_str(), inner))
}

fn decode_binary(value: &Value) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(value.as_str()?)
        .ok()
}

/// Orders two scalars of the same type (S, N or B); `None` when they cannot be ordered.
fn order(a: &Value, b: &Value) -> Option<Ordering> {
    let (ka, va) = type_of(a)?;
    let (kb, vb) = type_of(b)?;
    if ka != kb {
        return None;
    }
    match ka {
        "S" => Some(va.as_str()?.cmp(vb.as_str()?)),
        "N" => Some(
            number_key(va.as_str()?)
                .ok()?
                .cmp(&number_key(vb.as_str()?).ok()?),
        ),
        "B" => Some(decode_binary(va)?.cmp(&decode_binary(vb)?)),
        _ => None,
    }
}

/// DynamoDB's equality: numbers by value, sets regardless of order, maps and lists deeply.
pub fn equal(a: &Value, b: &Value) -> bool {
    let (Some((ka, va)), Some((kb, vb))) = (type_of(a), type_of(b)) else {
        return false;
    };
    if ka != kb {
        return false;
    }
    match ka {
        "S" | "N" | "B" => order(a, b) == Some(Ordering::Equal),
        "SS" | "NS" | "BS" => {
            let scalar = &ka[..1];
            let members = |v: &Value| -> Vec<Value> {
                v.as_array()
                    .map(|l| l.iter().map(|m| serde_json::json!({ scalar: m })).collect())
                    .unwrap_or_default()
            };
            let (ma, mb) = (members(va), members(vb));
            ma.len() == mb.len() && ma.iter().all(|x| mb.iter().any(|y| equal(x, y)))
        }
        "L" => match (va.as_array(), vb.as_array()) {
            (Some(la), Some(lb)) => {
                la.len() == lb.len() && la.iter().zip(lb).all(|(x, y)| equal(x, y))
            }
            _ => false,
        },
        "M" => match (va.as_object(), vb.as_object()) {
            (Some(ma), Some(mb)) => {
                ma.len() == mb.len()
                    && ma
                        .iter()
                        .all(|(k, x)| mb.get(k).is_some_and(|y| equal(x, y)))
            }
            _ => false,
        },
        _ => va == vb,
    }
}

/// Evaluates a condition against an item (an empty item when there is none).
pub fn evaluate(condition: &Condition, item: &Item) -> bool {
    match condition {
        Condition::Compare(a, op, b) => {
            let (a, b) = (operand_value(item, a), operand_value(item, b));
            match (op, a, b) {
                (Comparator::Eq, Some(a), Some(b)) => equal(&a, &b),
                (Comparator::Ne, Some(a), Some(b)) => !equal(&a, &b),
                (Comparator::Ne, _, _) => true,
                (_, Some(a), Some(b)) => match order(&a, &b) {
                    Some(o) => match op {
                        Comparator::Lt => o == Ordering::Less,
                        Comparator::Le => o != Ordering::Greater,
                        Comparator::Gt => o == Ordering::Greater,
                        _ => o != Ordering::Less,
                    },
                    None => false,
                },
                _ => false,
            }
        }
        Condition::Between(a, low, high) => {
            let (Some(a), Some(low), Some(high)) = (
                operand_value(item, a),
                operand_value(item, low),
                operand_value(item, high),
            ) else {
                return false;
            };
            order(&a, &low).is_some_and(|o| o != Ordering::Less)
                && order(&a, &high).is_some_and(|o| o != Ordering::Greater)
        }
        Condition::In(a, list) => operand_value(item, a).is_some_and(|a| {
            list.iter()
                .any(|b| operand_value(item, b).is_some_and(|b| equal(&a, &b)))
        }),
        Condition::AttributeExists(path) => resolve(item, path).is_some(),
        Condition::AttributeNotExists(path) => resolve(item, path).is_none(),
        Condition::AttributeType(path, wanted) => {
            let wanted = operand_value(item, wanted);
            let wanted = wanted
                .as_ref()
                .and_then(|w| w.get("S"))
                .and_then(Value::as_str);
            match (resolve(item, path).and_then(type_of), wanted) {
                (Some((kind, _)), Some(wanted)) => kind == wanted,
                _ => false,
            }
        }
        Condition::BeginsWith(a, prefix) => {
            let (Some(a), Some(prefix)) = (operand_value(item, a), operand_value(item, prefix))
            else {
                return false;
            };
            match (type_of(&a), type_of(&prefix)) {
                (Some(("S", a)), Some(("S", p))) => a
                    .as_str()
                    .zip(p.as_str())
                    .is_some_and(|(a, p)| a.starts_with(p)),
                (Some(("B", a)), Some(("B", p))) => decode_binary(a)
                    .zip(decode_binary(p))
                    .is_some_and(|(a, p)| a.starts_with(&p)),
                _ => false,
            }
        }
        Condition::Contains(a, needle) => {
            let (Some(a), Some(needle)) = (operand_value(item, a), operand_value(item, needle))
            else {
                return false;
            };
            let Some((kind, inner)) = type_of(&a) else {
                return false;
            };
            match kind {
                "S" => match (inner.as_str(), needle.get("S").and_then(Value::as_str)) {
                    (Some(s), Some(n)) => s.contains(n),
                    _ => false,
                },
                "SS" | "NS" | "BS" => {
                    let scalar = &kind[..1];
                    inner.as_array().is_some_and(|members| {
                        members
                            .iter()
                            .any(|m| equal(&serde_json::json!({ scalar: m }), &needle))
                    })
                }
                "L" => inner
                    .as_array()
                    .is_some_and(|l| l.iter().any(|m| equal(m, &needle))),
                _ => false,
            }
        }
        Condition::And(a, b) => evaluate(a, item) && evaluate(b, item),
        Condition::Or(a, b) => evaluate(a, item) || evaluate(b, item),
        Condition::Not(a) => !evaluate(a, item),
    }
}

/// The item with only the projected paths, as ProjectionExpression returns it.
pub fn project(item: &Item, paths: &[Path]) -> Item {
    let mut projected = Item::new();
    for path in paths {
        let Some(value) = resolve(item, path) else {
            continue;
        };
        let mut steps = path.0.iter();
        let Some(Step::Name(first)) = steps.next() else {
            continue;
        };
        let rest: Vec<&Step> = steps.collect();
        if rest.is_empty() {
            projected.insert(first.clone(), value.clone());
            continue;
        }
        let template = &item[first];
        let slot = projected
            .entry(first.clone())
            .or_insert_with(|| empty_like(template));
        place(slot, template, &rest, value);
    }
    projected
}

fn empty_like(template: &Value) -> Value {
    if template.get("L").is_some() {
        serde_json::json!({ "L": [] })
    } else {
        serde_json::json!({ "M": {} })
    }
}

/// Puts `value` at `steps` below `slot`, building the maps and lists of `template` on the way;
/// projected list elements keep their order and lose their gaps, as DynamoDB returns them.
fn place(slot: &mut Value, template: &Value, steps: &[&Step], value: &Value) {
    let Some((step, rest)) = steps.split_first() else {
        *slot = value.clone();
        return;
    };
    match step {
        Step::Name(name) => {
            let Some(inner_template) = template.get("M").and_then(|m| m.get(name)) else {
                return;
            };
            let Some(map) = slot.get_mut("M").and_then(Value::as_object_mut) else {
                return;
            };
            let child = map
                .entry(name.clone())
                .or_insert_with(|| empty_like(inner_template));
            place(child, inner_template, rest, value);
        }
        Step::Index(i) => {
            let Some(inner_template) = template.get("L").and_then(|l| l.get(*i)) else {
                return;
            };
            let Some(list) = slot.get_mut("L").and_then(Value::as_array_mut) else {
                return;
            };
            let mut child = empty_like(inner_template);
            place(&mut child, inner_template, rest, value);
            list.push(child);
        }
    }
}

/// Applies update actions to `item` (the current item, or just its key when there is none).
/// Returns the top-level attributes the update touched.
pub fn apply_update(item: &mut Item, actions: &[Action]) -> Result<BTreeSet<String>, DynamoError> {
    let kind = Kind::Update;
    let before = item.clone();
    let mut touched = BTreeSet::new();
    for action in actions {
        match action {
            Action::Set(path, value) => {
                let value = set_value(&before, value)?;
                assign(item, path, value)?;
                touched.insert(path.attribute().to_string());
            }
            Action::Remove(path) => {
                remove(item, path);
                touched.insert(path.attribute().to_string());
            }
            Action::Add(path, value) => {
                let current = resolve(item, path).cloned();
                let Some((vkind, _)) = type_of(value) else {
                    return Err(wrong_operand("ADD", "unknown"));
                };
                let new = match (vkind, current) {
                    ("N", None) => value.clone(),
                    ("N", Some(current)) => {
                        if type_of(&current).map(|t| t.0) != Some("N") {
                            return Err(invalid(
                                kind,
                                "An operand in the update expression has an incorrect data type",
                            ));
                        }
                        arithmetic(&current, value, false)?
                    }
                    ("SS" | "NS" | "BS", None) => value.clone(),
                    ("SS" | "NS" | "BS", Some(current)) => {
                        if type_of(&current).map(|t| t.0) != Some(vkind) {
                            return Err(invalid(
                                kind,
                                "An operand in the update expression has an incorrect data type",
                            ));
                        }
                        set_union(&current, value, vkind)
                    }
                    (other, _) => return Err(wrong_operand("ADD", other)),
                };
                assign(item, path, new)?;
                touched.insert(path.attribute().to_string());
            }
            Action::Delete(path, value) => {
                let Some((vkind, _)) = type_of(value) else {
                    return Err(wrong_operand("DELETE", "unknown"));
                };
                if !matches!(vkind, "SS" | "NS" | "BS") {
                    return Err(wrong_operand("DELETE", vkind));
                }
                if let Some(current) = resolve(item, path).cloned() {
                    if type_of(&current).map(|t| t.0) != Some(vkind) {
                        return Err(invalid(
                            kind,
                            "An operand in the update expression has an incorrect data type",
                        ));
                    }
                    match set_difference(&current, value, vkind) {
                        Some(rest) => assign(item, path, rest)?,
                        None => remove(item, path),
                    }
                }
                touched.insert(path.attribute().to_string());
            }
        }
    }
    Ok(touched)
}

fn wrong_operand(operator: &str, operand: &str) -> DynamoError {
    invalid(
        Kind::Update,
        format!(
            "Incorrect operand type for operator or function; operator: {operator}, operand type: {operand}"
        ),
    )
}

fn set_value(item: &Item, value: &SetValue) -> Result<Value, DynamoError> {
    let kind = Kind::Update;
    let missing = |path: &Path| {
        invalid(
            kind,
            format!(
                "The provided expression refers to an attribute that does not exist in the item; path: {}",
                path.render()
            ),
        )
    };
    match value {
        SetValue::Operand(Operand::Path(path)) => {
            resolve(item, path).cloned().ok_or_else(|| missing(path))
        }
        SetValue::Operand(Operand::Value(v)) => Ok(v.clone()),
        SetValue::Operand(Operand::Size(path)) => Err(missing(path)),
        SetValue::IfNotExists(path, fallback) => match resolve(item, path) {
            Some(v) => Ok(v.clone()),
            None => set_value(item, fallback),
        },
        SetValue::ListAppend(a, b) => {
            let (a, b) = (set_value(item, a)?, set_value(item, b)?);
            match (
                a.get("L").and_then(Value::as_array),
                b.get("L").and_then(Value::as_array),
            ) {
                (Some(a), Some(b)) => {
                    let mut joined = a.clone();
                    joined.extend(b.iter().cloned());
                    Ok(serde_json::json!({ "L": joined }))
                }
                _ => Err(invalid(
                    kind,
                    "Incorrect operand type for operator or function; operator or function: list_append, operand type: M",
                )),
            }
        }
        SetValue::Plus(a, b) | SetValue::Minus(a, b) => {
            let (a, b) = (set_value(item, a)?, set_value(item, b)?);
            let numbers =
                type_of(&a).map(|t| t.0) == Some("N") && type_of(&b).map(|t| t.0) == Some("N");
            if !numbers {
                return Err(invalid(
                    kind,
                    "Incorrect operand type for operator or function; operator or function: +, operand type: S",
                ));
            }
            arithmetic(&a, &b, matches!(value, SetValue::Minus(..)))
        }
    }
}

/// Sets `path` in `item`; the parent of a nested path must exist, as DynamoDB requires.
fn assign(item: &mut Item, path: &Path, value: Value) -> Result<(), DynamoError> {
    let bad_path = || {
        invalid(
            Kind::Update,
            "The document path provided in the update expression is invalid for update",
        )
    };
    let (last, parents) = path.0.split_last().ok_or_else(bad_path)?;
    let Some((Step::Name(first), middle)) = parents.split_first() else {
        return match last {
            Step::Name(name) => {
                item.insert(name.clone(), value);
                Ok(())
            }
            Step::Index(_) => Err(bad_path()),
        };
    };
    let mut current = item.get_mut(first).ok_or_else(bad_path)?;
    for step in middle {
        current = match step {
            Step::Name(name) => current
                .get_mut("M")
                .and_then(|m| m.get_mut(name))
                .ok_or_else(bad_path)?,
            Step::Index(i) => current
                .get_mut("L")
                .and_then(|l| l.get_mut(*i))
                .ok_or_else(bad_path)?,
        };
    }
    match last {
        Step::Name(name) => {
            let map = current
                .get_mut("M")
                .and_then(Value::as_object_mut)
                .ok_or_else(bad_path)?;
            map.insert(name.clone(), value);
        }
        Step::Index(i) => {
            let list = current
                .get_mut("L")
                .and_then(Value::as_array_mut)
                .ok_or_else(bad_path)?;
            if *i < list.len() {
                list[*i] = value;
            } else {
                list.push(value);
            }
        }
    }
    Ok(())
}

fn remove(item: &mut Item, path: &Path) {
    let Some((last, parents)) = path.0.split_last() else {
        return;
    };
    let Some((Step::Name(first), middle)) = parents.split_first() else {
        if let Step::Name(name) = last {
            item.remove(name);
        }
        return;
    };
    let Some(mut current) = item.get_mut(first) else {
        return;
    };
    for step in middle {
        let next = match step {
            Step::Name(name) => current.get_mut("M").and_then(|m| m.get_mut(name)),
            Step::Index(i) => current.get_mut("L").and_then(|l| l.get_mut(*i)),
        };
        let Some(next) = next else {
            return;
        };
        current = next;
    }
    match last {
        Step::Name(name) => {
            if let Some(map) = current.get_mut("M").and_then(Value::as_object_mut) {
                map.remove(name);
            }
        }
        Step::Index(i) => {
            if let Some(list) = current.get_mut("L").and_then(Value::as_array_mut)
                && *i < list.len()
            {
                list.remove(*i);
            }
        }
    }
}

fn set_union(current: &Value, added: &Value, kind: &str) -> Value {
    let scalar = &kind[..1];
    let mut members: Vec<Value> = current[kind].as_array().cloned().unwrap_or_default();
    for m in added[kind].as_array().into_iter().flatten() {
        let wrapped = serde_json::json!({ scalar: m });
        if !members
            .iter()
            .any(|x| equal(&serde_json::json!({ scalar: x }), &wrapped))
        {
            members.push(m.clone());
        }
    }
    serde_json::json!({ kind: members })
}

/// The set minus the removed members; `None` when nothing is left (the attribute goes away).
fn set_difference(current: &Value, removed: &Value, kind: &str) -> Option<Value> {
    let scalar = &kind[..1];
    let removed: Vec<Value> = removed[kind]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| serde_json::json!({ scalar: m }))
        .collect();
    let rest: Vec<Value> = current[kind]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| {
            let wrapped = serde_json::json!({ scalar: m });
            !removed.iter().any(|r| equal(r, &wrapped))
        })
        .cloned()
        .collect();
    (!rest.is_empty()).then(|| serde_json::json!({ kind: rest }))
}

/// A DynamoDB number as an integer and a power of ten.
fn decimal(text: &str) -> Option<(i128, i32)> {
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{int}{frac}");
    let value: i128 = digits.parse().ok()?;
    Some((value, exponent - frac.len() as i32))
}

/// `a + b` (or `a - b`) exactly, within DynamoDB's 38 significant digits.
fn arithmetic(a: &Value, b: &Value, subtract: bool) -> Result<Value, DynamoError> {
    let overflow = || {
        DynamoError::validation(
            "Number overflow. Attempting to store a number with magnitude larger than supported range",
        )
    };
    let parse = |v: &Value| v["N"].as_str().and_then(decimal).ok_or_else(overflow);
    let ((mut x, ex), (mut y, ey)) = (parse(a)?, parse(b)?);
    let exponent = ex.min(ey);
    let scale = |v: i128, by: i32| -> Result<i128, DynamoError> {
        10i128
            .checked_pow(by as u32)
            .and_then(|p| v.checked_mul(p))
            .ok_or_else(overflow)
    };
    x = scale(x, ex - exponent)?;
    y = scale(y, ey - exponent)?;
    let sum = if subtract {
        x.checked_sub(y)
    } else {
        x.checked_add(y)
    }
    .ok_or_else(overflow)?;
    Ok(serde_json::json!({ "N": render_decimal(sum, exponent) }))
}

fn render_decimal(value: i128, exponent: i32) -> String {
    let negative = value < 0;
    let mut digits = value.unsigned_abs().to_string();
    let text = if exponent >= 0 {
        if digits != "0" {
            digits.push_str(&"0".repeat(exponent as usize));
        }
        digits
    } else {
        let places = (-exponent) as usize;
        if digits.len() <= places {
            digits = format!("{}{digits}", "0".repeat(places - digits.len() + 1));
        }
        let (int, frac) = digits.split_at(digits.len() - places);
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            int.to_string()
        } else {
            format!("{int}.{frac}")
        }
    };
    if negative && text != "0" {
        format!("-{text}")
    } else {
        text
    }
}

/// Refuses an update that names one of the table's key attributes (`key_attributes`); index
/// keys may change, and move the item's index entries with them.
pub fn check_updated_keys(actions: &[Action], key_attributes: &[&str]) -> Result<(), DynamoError> {
    for action in actions {
        let path = match action {
            Action::Set(p, _) | Action::Remove(p) | Action::Add(p, _) | Action::Delete(p, _) => p,
        };
        if path.0.len() == 1 && key_attributes.contains(&path.attribute()) {
            return Err(DynamoError::validation(format!(
                "One or more parameter values were invalid: Cannot update attribute {}. This attribute is part of the key",
                path.attribute()
            )));
        }
    }
    Ok(())
}

/// The attributes of `item` named in `names`, as UPDATED_OLD and UPDATED_NEW return them.
pub fn only(item: &Item, names: &BTreeSet<String>) -> Item {
    item.iter()
        .filter(|(k, _)| names.contains(*k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect::<Map<String, Value>>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    fn placeholders(names: &[(&str, &str)], values: &[(&str, Value)]) -> Placeholders {
        Placeholders::new(
            names
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            values
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }

    fn parse_key(expression: &str, names: &[(&str, &str)]) -> Result<KeyCondition, String> {
        let mut values = vec![(":t", json!({"S": "TX"}))];
        if expression.contains(":p") {
            values.push((":p", json!({"S": "county#"})));
        }
        let mut p = placeholders(names, &values);
        let parsed = key_condition(expression, &mut p, &schema()).map_err(|e| format!("{e:?}"))?;
        p.finish(false).map_err(|e| format!("{e:?}"))?;
        Ok(parsed)
    }

    #[test]
    fn key_conditions_parse_in_any_order_and_parentheses() {
        assert_eq!(
            parse_key("#pk = :t", &[("#pk", "tenant")]).unwrap(),
            KeyCondition {
                pk: "TX".into(),
                range: SortKeyRange::All
            }
        );
        assert_eq!(
            parse_key("tenant = :t AND begins_with(#sk, :p)", &[("#sk", "record")])
                .unwrap()
                .range,
            SortKeyRange::BeginsWith("county#".into())
        );
        assert_eq!(
            parse_key("((record >= :p) and (tenant=:t))", &[])
                .unwrap()
                .range,
            SortKeyRange::Ge("county#".into())
        );
    }

    #[test]
    fn bad_key_conditions_are_rejected() {
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
                parse_key(expression, &names).is_err(),
                "{expression} was accepted"
            );
        }
    }

    fn item(value: Value) -> Item {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn conditions_follow_dynamodb_semantics() {
        let it = item(json!({
            "n": {"N": "10"}, "s": {"S": "hello"}, "ss": {"SS": ["a", "b"]},
            "m": {"M": {"x": {"L": [{"N": "1"}, {"N": "2"}]}}}
        }));
        let values = [
            (":nine", json!({"N": "9.0"})),
            (":ten", json!({"N": "1e1"})),
            (":he", json!({"S": "he"})),
            (":b", json!({"S": "b"})),
            (":two", json!({"N": "2"})),
        ];
        let cases = [
            ("n > :nine AND n = :ten", true),
            ("begins_with(s, :he) AND contains(ss, :b)", true),
            ("m.x[1] = :two AND size(m.x) = :two", true),
            (
                "NOT attribute_exists(missing) AND attribute_not_exists(m.y)",
                true,
            ),
            ("n BETWEEN :nine AND :ten OR n IN (:two)", true),
            ("missing <> :two", true),
            ("s < :nine", false),
            ("n IN (:nine, :two)", false),
        ];
        for (expression, expected) in cases {
            let mut p = placeholders(&[], &values);
            let parsed = condition(Kind::Filter, expression, &mut p).unwrap();
            assert_eq!(evaluate(&parsed, &it), expected, "{expression}");
        }
    }

    #[test]
    fn updates_set_remove_add_and_delete() {
        let mut it = item(json!({
            "k": {"S": "a"}, "n": {"N": "1.5"}, "ss": {"SS": ["a", "b"]},
            "l": {"L": [{"S": "x"}]}, "gone": {"S": "y"}
        }));
        let values = [
            (":one", json!({"N": "1"})),
            (":l", json!({"L": [{"S": "z"}]})),
            (":b", json!({"SS": ["b", "c"]})),
            (":a", json!({"SS": ["a"]})),
        ];
        let mut p = placeholders(&[("#n", "n")], &values);
        let actions = update(
            "SET #n = #n + :one, l = list_append(l, :l), c = if_not_exists(c, :one) REMOVE gone ADD ss :b DELETE ss2 :a",
            &mut p,
        )
        .unwrap();
        apply_update(&mut it, &actions).unwrap();
        assert_eq!(it["n"], json!({"N": "2.5"}));
        assert_eq!(it["l"], json!({"L": [{"S": "x"}, {"S": "z"}]}));
        assert_eq!(it["c"], json!({"N": "1"}));
        assert_eq!(it["ss"], json!({"SS": ["a", "b", "c"]}));
        assert!(!it.contains_key("gone"));
    }

    #[test]
    fn number_arithmetic_is_exact() {
        let n = |s: &str| json!({ "N": s });
        assert_eq!(arithmetic(&n("0.1"), &n("0.2"), false).unwrap(), n("0.3"));
        assert_eq!(arithmetic(&n("5"), &n("7"), true).unwrap(), n("-2"));
        assert_eq!(arithmetic(&n("1e2"), &n("1"), false).unwrap(), n("101"));
    }

    #[test]
    fn projection_keeps_nested_paths() {
        let it = item(json!({"a": {"S": "1"}, "m": {"M": {"x": {"S": "2"}, "y": {"S": "3"}}}}));
        let mut p = Placeholders::default();
        let paths = projection("a, m.y", &mut p).unwrap();
        assert_eq!(
            Value::Object(project(&it, &paths)),
            json!({"a": {"S": "1"}, "m": {"M": {"y": {"S": "3"}}}})
        );
    }
}
