//! CloudWatch Logs filter patterns, the subset `cargo xtask logs` and people at a terminal use:
//! terms (`ERROR`, `"exact phrase"`, `-excluded`, `?either ?or`) and JSON patterns
//! (`{ $.tenantId = "TX" || $.record.tenantId = "TX" }`, `&&`, `!=`, numeric comparisons, `*`
//! wildcards in strings, `EXISTS`, `NOT EXISTS`, `IS NULL`, `IS TRUE`, `IS FALSE`).
//!
//! Matching is case-sensitive, as CloudWatch Logs' is. A JSON pattern only matches messages that
//! are JSON objects; a message of any other shape never matches one.

use serde_json::Value;

/// A parsed filter pattern.
#[derive(Debug, Clone, PartialEq)]
pub enum Pattern {
    /// The empty pattern: every event.
    All,
    Terms(Terms),
    Json(Expr),
}

/// A term pattern: every `required` term appears, no `excluded` term appears, and, when there
/// are `?` terms, at least one of them appears.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Terms {
    required: Vec<String>,
    excluded: Vec<String>,
    any: Vec<String>,
}

/// One JSON pattern expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Compare(Vec<Step>, Op, Literal),
    Exists(Vec<Step>, bool),
    IsNull(Vec<Step>),
    IsBool(Vec<Step>, bool),
}

/// One step of a `$.a.b[0]` selector.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// The right-hand side of a comparison: a string (where `*` matches any run of characters) or a
/// number.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Num(f64),
}

/// Why a pattern was rejected; the message follows CloudWatch Logs' "Invalid filter pattern".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid filter pattern{}", detail.as_ref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct PatternError {
    detail: Option<String>,
}

impl PatternError {
    fn invalid() -> PatternError {
        PatternError { detail: None }
    }

    /// Valid CloudWatch Logs syntax the emulator does not implement: saying so beats a bare
    /// "invalid", which would send the user looking for a mistake that is not there.
    fn unsupported(what: &str) -> PatternError {
        PatternError {
            detail: Some(format!("the emulator does not support {what}")),
        }
    }
}

impl Pattern {
    pub fn parse(text: &str) -> Result<Pattern, PatternError> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(Pattern::All);
        }
        if text.starts_with('{') {
            return parse_json_pattern(text).map(Pattern::Json);
        }
        if text.starts_with('[') {
            return Err(PatternError::unsupported(
                "space-delimited `[...]` patterns",
            ));
        }
        if text.starts_with('%') {
            return Err(PatternError::unsupported(
                "regular expression `%...%` patterns",
            ));
        }
        parse_terms(text).map(Pattern::Terms)
    }

    pub fn matches(&self, message: &str) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Terms(terms) => terms.matches(message),
            Pattern::Json(expr) => {
                let trimmed = message.trim();
                if !trimmed.starts_with('{') {
                    return false;
                }
                match serde_json::from_str::<Value>(trimmed) {
                    Ok(value @ Value::Object(_)) => expr.matches(&value),
                    _ => false,
                }
            }
        }
    }
}

impl Terms {
    fn matches(&self, message: &str) -> bool {
        self.required
            .iter()
            .all(|term| message.contains(term.as_str()))
            && !self
                .excluded
                .iter()
                .any(|term| message.contains(term.as_str()))
            && (self.any.is_empty() || self.any.iter().any(|term| message.contains(term.as_str())))
    }
}

fn parse_terms(text: &str) -> Result<Terms, PatternError> {
    let mut terms = Terms::default();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else { break };
        let kind = match first {
            '-' | '?' => {
                chars.next();
                first
            }
            _ => ' ',
        };
        let term = if chars.next_if_eq(&'"').is_some() {
            let mut term = String::new();
            loop {
                match chars.next() {
                    None => return Err(PatternError::invalid()),
                    Some('"') => break,
                    Some('\\') => term.push(chars.next().ok_or_else(PatternError::invalid)?),
                    Some(c) => term.push(c),
                }
            }
            term
        } else {
            let mut term = String::new();
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if matches!(c, '"' | '{' | '}' | '[' | ']') {
                    return Err(PatternError::invalid());
                }
                term.push(c);
            }
            term
        };
        if term.is_empty() {
            return Err(PatternError::invalid());
        }
        match kind {
            '-' => terms.excluded.push(term),
            '?' => terms.any.push(term),
            _ => terms.required.push(term),
        }
    }
    Ok(terms)
}

impl Expr {
    fn matches(&self, root: &Value) -> bool {
        match self {
            Expr::Or(a, b) => a.matches(root) || b.matches(root),
            Expr::And(a, b) => a.matches(root) && b.matches(root),
            Expr::Exists(path, exists) => select(root, path).is_some() == *exists,
            Expr::IsNull(path) => matches!(select(root, path), Some(Value::Null)),
            Expr::IsBool(path, expected) => select(root, path) == Some(&Value::Bool(*expected)),
            Expr::Compare(path, op, literal) => {
                // A comparison never matches a field that is absent, `!=` included: CloudWatch
                // Logs selects on fields that are there.
                let Some(value) = select(root, path) else {
                    return false;
                };
                match literal {
                    Literal::Str(wanted) => {
                        let equal = value.as_str().is_some_and(|text| wildcard(wanted, text));
                        match op {
                            Op::Eq => equal,
                            Op::Ne => !equal,
                            // The parser only pairs strings with `=` and `!=`.
                            _ => false,
                        }
                    }
                    Literal::Num(wanted) => {
                        let Some(number) = value.as_f64() else {
                            return *op == Op::Ne;
                        };
                        match op {
                            Op::Eq => number == *wanted,
                            Op::Ne => number != *wanted,
                            Op::Lt => number < *wanted,
                            Op::Le => number <= *wanted,
                            Op::Gt => number > *wanted,
                            Op::Ge => number >= *wanted,
                        }
                    }
                }
            }
        }
    }
}

fn select<'v>(root: &'v Value, path: &[Step]) -> Option<&'v Value> {
    path.iter().try_fold(root, |value, step| match step {
        Step::Key(key) => value.as_object()?.get(key),
        Step::Index(index) => value.as_array()?.get(*index),
    })
}

/// Whether `text` matches `pattern`, where each `*` stands for any run of characters.
fn wildcard(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*` at all: an exact match.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    LParen,
    RParen,
    And,
    Or,
    Op(Op),
    Selector(Vec<Step>),
    Quoted(String),
    Word(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, PatternError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            '{' => Token::Open,
            '}' => Token::Close,
            '(' => Token::LParen,
            ')' => Token::RParen,
            '&' if chars.next_if_eq(&'&').is_some() => Token::And,
            '|' if chars.next_if_eq(&'|').is_some() => Token::Or,
            '!' if chars.next_if_eq(&'=').is_some() => Token::Op(Op::Ne),
            '=' => Token::Op(Op::Eq),
            '<' if chars.next_if_eq(&'=').is_some() => Token::Op(Op::Le),
            '<' => Token::Op(Op::Lt),
            '>' if chars.next_if_eq(&'=').is_some() => Token::Op(Op::Ge),
            '>' => Token::Op(Op::Gt),
            '"' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err(PatternError::invalid()),
                        Some('"') => break,
                        Some('\\') => text.push(chars.next().ok_or_else(PatternError::invalid)?),
                        Some(c) => text.push(c),
                    }
                }
                Token::Quoted(text)
            }
            '$' => {
                let mut raw = String::new();
                while let Some(c) = chars.next_if(|c| !is_delimiter(*c)) {
                    raw.push(c);
                }
                Token::Selector(parse_selector(&raw)?)
            }
            c if !is_delimiter(c) => {
                let mut word = String::from(c);
                while let Some(c) = chars.next_if(|c| !is_delimiter(*c)) {
                    word.push(c);
                }
                Token::Word(word)
            }
            _ => return Err(PatternError::invalid()),
        };
        tokens.push(token);
    }
    Ok(tokens)
}

fn is_delimiter(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '{' | '}' | '(' | ')' | '&' | '|' | '!' | '=' | '<' | '>' | '"'
        )
}

/// `.a.b[0]`, what follows the `$` of a selector.
fn parse_selector(raw: &str) -> Result<Vec<Step>, PatternError> {
    let mut steps = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let key = &after[..end];
            if key.is_empty() {
                return Err(PatternError::invalid());
            }
            if key == "*" {
                return Err(PatternError::unsupported("`*` in JSON selectors"));
            }
            steps.push(Step::Key(key.to_string()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let (index, tail) = after.split_once(']').ok_or_else(PatternError::invalid)?;
            let index = index.parse().map_err(|_| PatternError::invalid())?;
            steps.push(Step::Index(index));
            rest = tail;
        } else {
            return Err(PatternError::invalid());
        }
    }
    if steps.is_empty() {
        return Err(PatternError::invalid());
    }
    Ok(steps)
}

fn parse_json_pattern(text: &str) -> Result<Expr, PatternError> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens: &tokens,
        at: 0,
    };
    parser.expect(&Token::Open)?;
    let expr = parser.or()?;
    parser.expect(&Token::Close)?;
    if parser.at != tokens.len() {
        return Err(PatternError::invalid());
    }
    Ok(expr)
}

struct Parser<'t> {
    tokens: &'t [Token],
    at: usize,
}

impl Parser<'_> {
    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.at);
        self.at += 1;
        token
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.tokens.get(self.at) == Some(token) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &Token) -> Result<(), PatternError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(PatternError::invalid())
        }
    }

    fn or(&mut self) -> Result<Expr, PatternError> {
        let mut expr = self.and()?;
        while self.eat(&Token::Or) {
            expr = Expr::Or(Box::new(expr), Box::new(self.and()?));
        }
        Ok(expr)
    }

    fn and(&mut self) -> Result<Expr, PatternError> {
        let mut expr = self.primary()?;
        while self.eat(&Token::And) {
            expr = Expr::And(Box::new(expr), Box::new(self.primary()?));
        }
        Ok(expr)
    }

    fn primary(&mut self) -> Result<Expr, PatternError> {
        if self.eat(&Token::LParen) {
            let expr = self.or()?;
            self.expect(&Token::RParen)?;
            return Ok(expr);
        }
        let Some(Token::Selector(path)) = self.next() else {
            return Err(PatternError::invalid());
        };
        let path = path.clone();
        match self.next() {
            Some(Token::Op(op)) => {
                let op = *op;
                let literal = match self.next() {
                    Some(Token::Quoted(text)) => Literal::Str(text.clone()),
                    Some(Token::Word(word)) => match word.parse::<f64>() {
                        Ok(number) if number.is_finite() => Literal::Num(number),
                        _ => Literal::Str(word.clone()),
                    },
                    _ => return Err(PatternError::invalid()),
                };
                if matches!(literal, Literal::Str(_)) && !matches!(op, Op::Eq | Op::Ne) {
                    return Err(PatternError::invalid());
                }
                Ok(Expr::Compare(path, op, literal))
            }
            Some(Token::Word(word)) if word == "EXISTS" => Ok(Expr::Exists(path, true)),
            Some(Token::Word(word)) if word == "NOT" => match self.next() {
                Some(Token::Word(word)) if word == "EXISTS" => Ok(Expr::Exists(path, false)),
                _ => Err(PatternError::invalid()),
            },
            Some(Token::Word(word)) if word == "IS" => match self.next() {
                Some(Token::Word(word)) if word == "NULL" => Ok(Expr::IsNull(path)),
                Some(Token::Word(word)) if word == "TRUE" => Ok(Expr::IsBool(path, true)),
                Some(Token::Word(word)) if word == "FALSE" => Ok(Expr::IsBool(path, false)),
                _ => Err(PatternError::invalid()),
            },
            _ => Err(PatternError::invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, message: &str) -> bool {
        Pattern::parse(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .matches(message)
    }

    const TX_APP: &str =
        r#"{"level":"INFO","tenantId":"TX","message":"looked up 38 members","count":38}"#;
    const TX_PLATFORM: &str = r#"{"time":"2026-01-01T00:00:00.000Z","type":"platform.report","record":{"requestId":"r1","tenantId":"TX","metrics":{"durationMs":1.5}}}"#;
    const CA_APP: &str =
        r#"{"level":"ERROR","tenantId":"CA","message":"lookup failed","count":52}"#;

    #[test]
    fn empty_pattern_matches_everything() {
        assert!(matches("", "anything at all"));
        assert!(matches("   ", "{}"));
    }

    #[test]
    fn terms_must_all_appear_and_are_case_sensitive() {
        assert!(matches("ERROR", "[ERROR] lookup failed"));
        assert!(!matches("ERROR", "[error] lookup failed"));
        assert!(matches("ERROR lookup", "[ERROR] lookup failed"));
        assert!(!matches("ERROR timeout", "[ERROR] lookup failed"));
    }

    #[test]
    fn quoted_terms_match_exact_phrases() {
        assert!(matches("\"lookup failed\"", "[ERROR] lookup failed"));
        assert!(!matches("\"failed lookup\"", "[ERROR] lookup failed"));
        assert!(matches(r#""probe log line 2""#, "probe log line 2"));
    }

    #[test]
    fn excluded_and_optional_terms() {
        assert!(matches("ERROR -timeout", "ERROR lookup failed"));
        assert!(!matches("ERROR -timeout", "ERROR timeout"));
        assert!(matches("?ERROR ?WARN", "WARN slow"));
        assert!(!matches("?ERROR ?WARN", "INFO fine"));
    }

    #[test]
    fn json_equality_on_top_level_and_nested_fields() {
        assert!(matches(r#"{ $.tenantId = "TX" }"#, TX_APP));
        assert!(!matches(r#"{ $.tenantId = "TX" }"#, CA_APP));
        assert!(!matches(r#"{ $.tenantId = "TX" }"#, TX_PLATFORM));
        assert!(matches(r#"{ $.record.tenantId = "TX" }"#, TX_PLATFORM));
        assert!(
            matches(r#"{$.tenantId=TX}"#, TX_APP),
            "unquoted string value"
        );
    }

    #[test]
    fn json_or_and_and_combine() {
        let either = r#"{ $.record.tenantId = "TX" || $.tenantId = "TX" }"#;
        assert!(matches(either, TX_APP));
        assert!(matches(either, TX_PLATFORM));
        assert!(!matches(either, CA_APP));
        let both = r#"{ ($.tenantId = "CA") && $.level = "ERROR" }"#;
        assert!(matches(both, CA_APP));
        assert!(!matches(both, TX_APP));
    }

    #[test]
    fn json_not_equal_needs_the_field() {
        assert!(matches(r#"{ $.tenantId != "TX" }"#, CA_APP));
        assert!(!matches(r#"{ $.tenantId != "TX" }"#, TX_APP));
        assert!(!matches(r#"{ $.tenantId != "TX" }"#, TX_PLATFORM));
    }

    #[test]
    fn json_numbers_compare_numerically() {
        assert!(matches("{ $.count = 38 }", TX_APP));
        assert!(matches("{ $.count > 40 }", CA_APP));
        assert!(!matches("{ $.count > 40 }", TX_APP));
        assert!(matches("{ $.count <= 38.0 }", TX_APP));
        assert!(matches("{ $.count >= 52 }", CA_APP));
        assert!(matches("{ $.record.metrics.durationMs < 2 }", TX_PLATFORM));
        assert!(
            !matches("{ $.level > 3 }", TX_APP),
            "strings are not numbers"
        );
    }

    #[test]
    fn json_wildcards_in_string_values() {
        assert!(matches(r#"{ $.message = "looked up*" }"#, TX_APP));
        assert!(matches(r#"{ $.message = "*38*" }"#, TX_APP));
        assert!(matches(r#"{ $.message = "*members" }"#, TX_APP));
        assert!(!matches(r#"{ $.message = "*failed" }"#, TX_APP));
        assert!(
            !matches(r#"{ $.message = "looked" }"#, TX_APP),
            "no wildcard: exact"
        );
    }

    #[test]
    fn json_exists_null_and_booleans() {
        assert!(matches("{ $.record EXISTS }", TX_PLATFORM));
        assert!(matches("{ $.record NOT EXISTS }", TX_APP));
        assert!(matches("{ $.a IS NULL }", r#"{"a":null}"#));
        assert!(matches("{ $.a IS TRUE }", r#"{"a":true}"#));
        assert!(!matches("{ $.a IS FALSE }", r#"{"a":true}"#));
        assert!(matches("{ $.list[1] = \"b\" }", r#"{"list":["a","b"]}"#));
    }

    #[test]
    fn non_json_messages_never_match_a_json_pattern() {
        assert!(!matches(r#"{ $.tenantId NOT EXISTS }"#, "probe log line 0"));
        assert!(!matches(r#"{ $.tenantId NOT EXISTS }"#, "[1, 2]"));
        assert!(!matches(r#"{ $.tenantId NOT EXISTS }"#, "{ not json"));
    }

    #[test]
    fn invalid_patterns_are_rejected() {
        for pattern in [
            "{ $.tenantId = }",
            "{ $.tenantId = \"TX\"",
            "{ tenantId = \"TX\" }",
            "{ $.tenantId = \"TX\" && }",
            "{ $.level < \"x\" }",
            "{ $. = 1 }",
            "{ ($.a = 1 }",
            "\"unterminated",
            "-",
        ] {
            let error = Pattern::parse(pattern).expect_err(pattern);
            assert!(
                error.to_string().starts_with("Invalid filter pattern"),
                "{pattern}: {error}"
            );
        }
    }

    #[test]
    fn unsupported_syntax_says_so() {
        let error = Pattern::parse("[ip, user]").expect_err("space-delimited");
        assert!(error.to_string().contains("space-delimited"), "{error}");
    }
}
