//! HQL lexer. Mirrors the ANTLR lexer of Heroic's `HeroicQuery.g4`: a run of
//! "simple string" characters `[a-zA-Z0-9:/_\-.]` is read whole and then
//! classified (keyword, duration, number, time/date literal, identifier or
//! simple string), which is what ANTLR's longest-match rule amounts to.

use crate::error::{Pos, QueryError, Result};

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Let,
    As,
    True,
    False,
    Where,
    With,
    From,
    Or,
    And,
    Not,
    In,
    By,
    Plus,
    Minus,
    Div,
    Mul,
    Eq,
    Regex,
    NotRegex,
    Prefix,
    NotPrefix,
    Bang,
    NotEq,
    Semi,
    Comma,
    LParen,
    RParen,
    LCurly,
    RCurly,
    LBracket,
    RBracket,
    Pipe,
    SKey,
    Reference(String),
    /// `HH:MM[:ss[.SSS]]`, only meaningful inside `{}`.
    TimeLit(String),
    /// `yyyy-MM-dd`, only meaningful inside `{}`.
    DateLit(String),
    Quoted(String),
    Identifier(String),
    /// A duration with its unit suffix as written (`w`, `M`, `y` are kept
    /// here so the parser can reject them with a clear message).
    Duration(i64, String),
    Integer(i64),
    Float(f64),
    Simple(String),
    Eof,
}

impl Tok {
    /// How the token is named in "expected …" messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Eof => "end of input".into(),
            Tok::Quoted(s) => format!("string \"{s}\""),
            Tok::Identifier(s) | Tok::Simple(s) => format!("'{s}'"),
            Tok::Duration(v, u) => format!("duration '{v}{u}'"),
            Tok::Integer(i) => format!("integer '{i}'"),
            Tok::Float(f) => format!("number '{f}'"),
            Tok::Reference(r) => format!("'${r}'"),
            Tok::TimeLit(s) | Tok::DateLit(s) => format!("'{s}'"),
            other => format!("'{}'", symbol(other)),
        }
    }
}

fn symbol(t: &Tok) -> &'static str {
    match t {
        Tok::Let => "let",
        Tok::As => "as",
        Tok::True => "true",
        Tok::False => "false",
        Tok::Where => "where",
        Tok::With => "with",
        Tok::From => "from",
        Tok::Or => "or",
        Tok::And => "and",
        Tok::Not => "not",
        Tok::In => "in",
        Tok::By => "by",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Div => "/",
        Tok::Mul => "*",
        Tok::Eq => "=",
        Tok::Regex => "~",
        Tok::NotRegex => "!~",
        Tok::Prefix => "^",
        Tok::NotPrefix => "!^",
        Tok::Bang => "!",
        Tok::NotEq => "!=",
        Tok::Semi => ";",
        Tok::Comma => ",",
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LCurly => "{",
        Tok::RCurly => "}",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::Pipe => "|",
        Tok::SKey => "$key",
        _ => "?",
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
    /// The position of the token's last character.
    pub end: Pos,
    /// The source text (decoded for quoted strings), used where any literal
    /// is accepted as a string (filter values).
    pub text: String,
}

fn is_simple(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ':' | '/' | '_' | '-' | '.')
}

pub fn lex(src: &str) -> Result<Vec<Token>> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1u32, 1u32);
    // Advances over n chars, tracking line and column.
    let advance = |i: &mut usize, line: &mut u32, col: &mut u32, n: usize| {
        for _ in 0..n {
            if chars[*i] == '\n' {
                *line += 1;
                *col = 1;
            } else {
                *col += 1;
            }
            *i += 1;
        }
    };
    // Records a token of n (≥ 1) chars starting at `pos` and advances over
    // it, noting where its last char is.
    let emit = |out: &mut Vec<Token>, i: &mut usize, line: &mut u32, col: &mut u32, tok, pos, text, n: usize| {
        advance(i, line, col, n - 1);
        let end = Pos { line: *line, col: *col, offset: *i as u32 };
        advance(i, line, col, 1);
        out.push(Token { tok, pos, end, text });
    };
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos { line, col, offset: i as u32 };
        if c.is_whitespace() {
            advance(&mut i, &mut line, &mut col, 1);
            continue;
        }
        if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                advance(&mut i, &mut line, &mut col, 1);
            }
            continue;
        }
        let next = chars.get(i + 1).copied();
        let two = |t: Tok| (t, 2usize);
        let one = |t: Tok| (t, 1usize);
        let punct = match c {
            '!' => Some(match next {
                Some('=') => two(Tok::NotEq),
                Some('~') => two(Tok::NotRegex),
                Some('^') => two(Tok::NotPrefix),
                _ => one(Tok::Bang),
            }),
            '+' => Some(one(Tok::Plus)),
            '/' if !next.is_some_and(is_simple) => Some(one(Tok::Div)),
            '*' => Some(one(Tok::Mul)),
            '=' => Some(one(Tok::Eq)),
            '~' => Some(one(Tok::Regex)),
            '^' => Some(one(Tok::Prefix)),
            ';' => Some(one(Tok::Semi)),
            ',' => Some(one(Tok::Comma)),
            '(' => Some(one(Tok::LParen)),
            ')' => Some(one(Tok::RParen)),
            '{' => Some(one(Tok::LCurly)),
            '}' => Some(one(Tok::RCurly)),
            '[' => Some(one(Tok::LBracket)),
            ']' => Some(one(Tok::RBracket)),
            '|' => Some(one(Tok::Pipe)),
            _ => None,
        };
        if let Some((tok, n)) = punct {
            let text: String = chars[i..i + n].iter().collect();
            emit(&mut out, &mut i, &mut line, &mut col, tok, pos, text, n);
            continue;
        }
        if c == '$' {
            let mut j = i + 1;
            if j < chars.len() && chars[j].is_ascii_alphabetic() {
                while j < chars.len() && chars[j].is_ascii_alphanumeric() {
                    j += 1;
                }
            }
            let name: String = chars[i + 1..j].iter().collect();
            if name.is_empty() {
                return Err(QueryError::parse(pos, "expected a reference name after '$' (e.g. $now or $key)"));
            }
            let tok = if name == "key" { Tok::SKey } else { Tok::Reference(name.clone()) };
            let n = j - i;
            emit(&mut out, &mut i, &mut line, &mut col, tok, pos, format!("${name}"), n);
            continue;
        }
        if c == '"' {
            let (s, n) = quoted(&chars[i..], pos)?;
            emit(&mut out, &mut i, &mut line, &mut col, Tok::Quoted(s.clone()), pos, s, n);
            continue;
        }
        if is_simple(c) {
            let mut j = i;
            while j < chars.len() && is_simple(chars[j]) {
                j += 1;
            }
            let text: String = chars[i..j].iter().collect();
            let tok = classify(&text).map_err(|m| QueryError::parse(pos, m))?;
            let n = j - i;
            emit(&mut out, &mut i, &mut line, &mut col, tok, pos, text, n);
            continue;
        }
        return Err(QueryError::parse(pos, format!("unexpected character '{c}'")));
    }
    let eof = Pos { line, col, offset: i as u32 };
    out.push(Token { tok: Tok::Eof, pos: eof, end: eof, text: String::new() });
    Ok(out)
}

/// Reads a quoted string starting at the opening quote; returns the decoded
/// string and the number of chars consumed.
fn quoted(chars: &[char], pos: Pos) -> Result<(String, usize)> {
    let mut s = String::new();
    let mut i = 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Ok((s, i + 1)),
            '\\' => {
                let e = chars.get(i + 1).copied();
                let decoded = match e {
                    Some('b') => '\u{8}',
                    Some('t') => '\t',
                    Some('n') => '\n',
                    Some('f') => '\u{c}',
                    Some('r') => '\r',
                    Some('"') => '"',
                    Some('\'') => '\'',
                    Some('\\') => '\\',
                    Some('u') => {
                        let hex: String = chars.iter().skip(i + 2).take(4).collect();
                        let code = (hex.len() == 4)
                            .then(|| u32::from_str_radix(&hex, 16).ok())
                            .flatten()
                            .and_then(char::from_u32)
                            .ok_or_else(|| {
                                QueryError::parse(pos, format!("invalid unicode escape \\u{hex} in string"))
                            })?;
                        s.push(code);
                        i += 6;
                        continue;
                    }
                    other => {
                        return Err(QueryError::parse(
                            pos,
                            format!(
                                "invalid escape sequence \\{} in string",
                                other.map(String::from).unwrap_or_default()
                            ),
                        ))
                    }
                };
                s.push(decoded);
                i += 2;
            }
            c => {
                s.push(c);
                i += 1;
            }
        }
    }
    Err(QueryError::parse(pos, "unterminated string: expected a closing '\"'"))
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn classify(text: &str) -> std::result::Result<Tok, String> {
    let keyword = match text {
        "let" => Some(Tok::Let),
        "as" => Some(Tok::As),
        "true" => Some(Tok::True),
        "false" => Some(Tok::False),
        "where" => Some(Tok::Where),
        "with" => Some(Tok::With),
        "from" => Some(Tok::From),
        "or" => Some(Tok::Or),
        "and" => Some(Tok::And),
        "not" => Some(Tok::Not),
        "in" => Some(Tok::In),
        "by" => Some(Tok::By),
        "-" => Some(Tok::Minus),
        _ => None,
    };
    if let Some(k) = keyword {
        return Ok(k);
    }
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let negative = unsigned.len() != text.len();
    let digits = unsigned.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        let (num, rest) = unsigned.split_at(digits);
        let int = || -> std::result::Result<i64, String> {
            let v: i64 = num.parse().map_err(|_| format!("integer '{text}' is too large"))?;
            Ok(if negative { -v } else { v })
        };
        if rest.is_empty() {
            return Ok(Tok::Integer(int()?));
        }
        if matches!(rest, "ms" | "s" | "m" | "h" | "H" | "d" | "w" | "M" | "y") {
            return Ok(Tok::Duration(int()?, rest.to_string()));
        }
        if let Some(frac) = rest.strip_prefix('.') {
            if frac.is_empty() || all_digits(frac) {
                return text.parse::<f64>().map(Tok::Float).map_err(|e| e.to_string());
            }
        }
        if !negative && is_time(text) {
            return Ok(Tok::TimeLit(text.to_string()));
        }
        if !negative && is_date(text) {
            return Ok(Tok::DateLit(text.to_string()));
        }
    } else if let Some(frac) = unsigned.strip_prefix('.') {
        if all_digits(frac) {
            return format!("{}0.{frac}", if negative { "-" } else { "" })
                .parse::<f64>()
                .map(Tok::Float)
                .map_err(|e| e.to_string());
        }
    }
    let mut cs = text.chars();
    if cs.next().is_some_and(|c| c.is_ascii_alphabetic()) && cs.all(|c| c.is_ascii_alphanumeric()) {
        return Ok(Tok::Identifier(text.to_string()));
    }
    Ok(Tok::Simple(text.to_string()))
}

fn is_time(s: &str) -> bool {
    let (hm, frac) = match s.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let parts: Vec<&str> = hm.split(':').collect();
    let ok_parts = (parts.len() == 2 || parts.len() == 3) && parts.iter().all(|p| all_digits(p));
    ok_parts && frac.is_none_or(|f| parts.len() == 3 && all_digits(f))
}

fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3 && parts.iter().all(|p| all_digits(p))
}
