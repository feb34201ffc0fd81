//! Recursive-descent parser for HQL statements, expressions and filters.
//!
//! Precedence, lowest first: `|` (chain), `by`, `+ -`, `* /`, unary `-`.
//!
//! Filters follow Heroic's ANTLR grammar (`HeroicQuery.g4`) exactly, so that
//! a filter written for Heroic selects the same series here. ANTLR gives the
//! alternatives listed first the tightest binding, and the grammar lists
//! `filter Or filter` before `filter And filter` and `Bang filter` last. So,
//! loosest first: `!` (prefix: it negates everything to its right, up to the
//! closing parenthesis), `and`, `or`, then the atoms. `a = 1 and b = 2 or
//! c = 3` is `a = 1 and (b = 2 or c = 3)`; `!a = 1 and b = 2` is
//! `!(a = 1 and b = 2)`, and so is `!(a = 1) and b = 2` (ANTLR parses a
//! prefix operator's operand at that operator's precedence, so the `and`
//! after the parenthesis is still taken). `not` is only valid in `not in`.

use heroic_plugin_api::filter::Filter;

use super::lexer::{Tok, Token};
use super::{Expr, ExprKind, Query, SourceRange, Statement};
use crate::error::{Pos, QueryError, Result};
use crate::limits::{MAX_EXPRESSION_DEPTH, MAX_FILTER_DEPTH};

pub(crate) struct Parser {
    toks: Vec<Token>,
    i: usize,
    /// Current nesting of expressions or filters: every recursive rule goes
    /// through [`Parser::nested`], which refuses to go deeper than the limit
    /// (a stack overflow would abort the whole node).
    depth: usize,
}

type R<T> = Result<T>;
/// Positional and keyword arguments of a call.
type Arguments = (Vec<Expr>, Vec<(String, Expr)>);

impl Parser {
    pub fn new(toks: Vec<Token>) -> Self {
        Parser { toks, i: 0, depth: 0 }
    }

    /// Runs one level of a recursive rule, refusing to nest deeper than
    /// `limit` levels.
    fn nested<T>(&mut self, what: &str, limit: usize, rule: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        if self.depth >= limit {
            return Err(QueryError::parse(
                self.pos(),
                format!("{what} nested more than {limit} levels deep (the nesting limit)"),
            ));
        }
        self.depth += 1;
        let result = rule(self);
        self.depth -= 1;
        result
    }

    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }

    fn peek_at(&self, n: usize) -> &Tok {
        let j = (self.i + n).min(self.toks.len() - 1);
        &self.toks[j].tok
    }

    fn pos(&self) -> Pos {
        self.toks[self.i].pos
    }

    /// Where the last token taken ends.
    fn prev_end(&self) -> Pos {
        self.toks[self.i.saturating_sub(1)].end
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i < self.toks.len() - 1 {
            self.i += 1;
        }
        t
    }

    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == t {
            self.bump();
            true
        } else {
            false
        }
    }

    fn error<T>(&self, expected: &str) -> R<T> {
        let t = &self.toks[self.i];
        Err(QueryError::parse(t.pos, format!("expected {expected}, found {}", t.tok.describe())))
    }

    fn expect(&mut self, t: &Tok, expected: &str) -> R<Token> {
        if self.peek() == t {
            Ok(self.bump())
        } else {
            self.error(expected)
        }
    }

    pub fn expect_eof(&self) -> R<()> {
        if *self.peek() == Tok::Eof {
            Ok(())
        } else {
            self.error("end of input")
        }
    }

    /// `statement (';' statement)* ';'?`
    pub fn statements(&mut self) -> R<Vec<(Pos, Statement)>> {
        let mut out = Vec::new();
        loop {
            while self.eat(&Tok::Semi) {}
            if *self.peek() == Tok::Eof {
                return Ok(out);
            }
            let pos = self.pos();
            out.push((pos, self.statement()?));
            match self.peek() {
                Tok::Semi => continue,
                Tok::Eof => return Ok(out),
                _ => return self.error("';', 'from', 'where', 'with', 'as' or end of input"),
            }
        }
    }

    fn statement(&mut self) -> R<Statement> {
        if self.eat(&Tok::Let) {
            let name = self.expr()?;
            let name = match name.kind {
                ExprKind::Reference(r) => r,
                _ => return Err(QueryError::parse(name.pos, "expected a reference ($name) after 'let'")),
            };
            self.expect(&Tok::Eq, "'='")?;
            return Ok(Statement::Let { name, query: self.query()? });
        }
        Ok(Statement::Query(self.query()?))
    }

    fn query(&mut self) -> R<Query> {
        let select = if *self.peek() == Tok::Mul
            && matches!(self.peek_at(1), Tok::From | Tok::Where | Tok::With | Tok::As | Tok::Semi | Tok::Eof)
        {
            self.bump();
            None
        } else {
            Some(self.expr()?)
        };
        let mut q = Query { select, ..Query::default() };
        if self.eat(&Tok::From) {
            let t = self.bump();
            let name = match &t.tok {
                Tok::Identifier(s) => s.clone(),
                _ => {
                    return Err(QueryError::parse(
                        t.pos,
                        format!("expected a source (points, spreads, …), found {}", t.tok.describe()),
                    ))
                }
            };
            q.source = Some((name, t.pos));
            if *self.peek() == Tok::LParen {
                let open = self.bump().pos;
                let first = self.expr()?;
                q.range = Some(if self.eat(&Tok::Comma) {
                    let second = self.expr()?;
                    SourceRange::Absolute(first, second, open)
                } else {
                    SourceRange::Relative(first, open)
                });
                self.expect(&Tok::RParen, "')' or ','")?;
            }
        }
        if self.eat(&Tok::Where) {
            q.filter = Some(self.checked_filter()?);
        }
        if self.eat(&Tok::With) {
            q.with = self.key_values()?;
        }
        if self.eat(&Tok::As) {
            q.as_ = self.key_values()?;
        }
        Ok(q)
    }

    fn key_values(&mut self) -> R<Vec<(String, Expr)>> {
        let mut out = vec![self.key_value()?];
        while self.eat(&Tok::Comma) {
            out.push(self.key_value()?);
        }
        Ok(out)
    }

    fn key_value(&mut self) -> R<(String, Expr)> {
        let name = match self.peek().clone() {
            Tok::Identifier(s) => s,
            _ => return self.error("a keyword argument (name=value)"),
        };
        self.bump();
        self.expect(&Tok::Eq, "'='")?;
        Ok((name, self.expr()?))
    }

    /// Full expression: pipes are the loosest.
    pub fn expr(&mut self) -> R<Expr> {
        self.nested("expression", MAX_EXPRESSION_DEPTH, Self::pipe_expr)
    }

    fn pipe_expr(&mut self) -> R<Expr> {
        let first = self.by_expr()?;
        if *self.peek() != Tok::Pipe {
            return Ok(first);
        }
        let pos = first.pos;
        let mut items = vec![first];
        while self.eat(&Tok::Pipe) {
            items.push(self.by_expr()?);
        }
        let end = self.prev_end();
        Ok(Expr { kind: ExprKind::Function { name: "chain".into(), args: items, kwargs: vec![] }, pos, end })
    }

    fn by_expr(&mut self) -> R<Expr> {
        let mut left = self.additive()?;
        while *self.peek() == Tok::By {
            let by = self.bump();
            let of = if self.eat(&Tok::Mul) {
                Expr { kind: ExprKind::Empty, pos: by.pos, end: self.prev_end() }
            } else {
                self.additive()?
            };
            let (pos, end) = (left.pos, of.end);
            let kind = ExprKind::Function { name: "group".into(), args: vec![of, left], kwargs: vec![] };
            left = Expr { kind, pos, end };
        }
        Ok(left)
    }

    fn additive(&mut self) -> R<Expr> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => '+',
                Tok::Minus => '-',
                _ => return Ok(left),
            };
            self.bump();
            let right = self.multiplicative()?;
            let (pos, end) = (left.pos, right.end);
            left = Expr { kind: ExprKind::Binary { op, left: Box::new(left), right: Box::new(right) }, pos, end };
        }
    }

    fn multiplicative(&mut self) -> R<Expr> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Mul => '*',
                Tok::Div => '/',
                _ => return Ok(left),
            };
            self.bump();
            let right = self.unary()?;
            let (pos, end) = (left.pos, right.end);
            left = Expr { kind: ExprKind::Binary { op, left: Box::new(left), right: Box::new(right) }, pos, end };
        }
    }

    fn unary(&mut self) -> R<Expr> {
        if *self.peek() == Tok::Minus {
            let pos = self.bump().pos;
            let inner = self.nested("expression", MAX_EXPRESSION_DEPTH, Self::unary)?;
            let end = inner.end;
            return Ok(Expr { kind: ExprKind::Negate(Box::new(inner)), pos, end });
        }
        self.primary()
    }

    fn primary(&mut self) -> R<Expr> {
        let t = self.bump();
        let pos = t.pos;
        let kind = match t.tok {
            Tok::LParen => {
                let e = self.expr()?;
                self.expect(&Tok::RParen, "')'")?;
                return Ok(e);
            }
            Tok::Duration(v, u) => ExprKind::Duration { value: v, unit: u },
            Tok::Integer(i) => ExprKind::Integer(i),
            Tok::Float(f) => ExprKind::Float(f),
            Tok::Quoted(s) | Tok::Simple(s) => ExprKind::Str(s),
            Tok::Reference(r) => ExprKind::Reference(r),
            Tok::Identifier(name) => {
                if *self.peek() == Tok::LParen {
                    self.bump();
                    let (args, kwargs) = self.arguments()?;
                    self.expect(&Tok::RParen, "')' or ','")?;
                    ExprKind::Function { name, args, kwargs }
                } else {
                    ExprKind::Str(name)
                }
            }
            Tok::LBracket => ExprKind::List(self.list(&Tok::RBracket, "']'")?),
            Tok::LCurly => match self.peek().clone() {
                Tok::TimeLit(s) => {
                    self.bump();
                    self.expect(&Tok::RCurly, "'}'")?;
                    ExprKind::Time(super::time::parse_time(&s).map_err(|m| QueryError::parse(pos, m))?)
                }
                Tok::DateLit(d) => {
                    self.bump();
                    let time = match self.peek().clone() {
                        Tok::TimeLit(s) => {
                            self.bump();
                            Some(s)
                        }
                        _ => None,
                    };
                    self.expect(&Tok::RCurly, "a time (HH:MM) or '}'")?;
                    ExprKind::DateTime(
                        super::time::parse_date_time(&d, time.as_deref()).map_err(|m| QueryError::parse(pos, m))?,
                    )
                }
                _ => ExprKind::List(self.list(&Tok::RCurly, "'}'")?),
            },
            other => {
                return Err(QueryError::parse(pos, format!("expected an expression, found {}", other.describe())));
            }
        };
        Ok(Expr { kind, pos, end: self.prev_end() })
    }

    fn list(&mut self, close: &Tok, what: &str) -> R<Vec<Expr>> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(self.expr()?);
            if self.eat(close) {
                return Ok(items);
            }
            self.expect(&Tok::Comma, &format!("',' or {what}"))?;
        }
    }

    fn arguments(&mut self) -> R<Arguments> {
        let (mut args, mut kwargs) = (Vec::new(), Vec::new());
        if *self.peek() == Tok::RParen {
            return Ok((args, kwargs));
        }
        loop {
            if matches!(self.peek(), Tok::Identifier(_)) && *self.peek_at(1) == Tok::Eq {
                kwargs.push(self.key_value()?);
            } else if !kwargs.is_empty() {
                return self.error("a keyword argument (name=value): positional arguments must come first");
            } else {
                args.push(self.expr()?);
            }
            if !self.eat(&Tok::Comma) {
                return Ok((args, kwargs));
            }
        }
    }

    // ---- filters ----

    /// A whole filter, optimised, refused when its tree nests deeper than
    /// the limit. (Parentheses and `!` are counted while parsing, which keeps
    /// the parser's own recursion bounded; `and`/`or` levels only show in the
    /// tree, so the tree is measured too.)
    pub fn checked_filter(&mut self) -> R<Filter> {
        let pos = self.pos();
        let f = self.filter()?;
        if f.depth() > MAX_FILTER_DEPTH {
            return Err(QueryError::parse(
                pos,
                format!("filter nested more than {MAX_FILTER_DEPTH} levels deep (the nesting limit)"),
            ));
        }
        Ok(crate::filter::optimize(&f))
    }

    /// `f and f …`: `and` is the loosest binary operator.
    pub fn filter(&mut self) -> R<Filter> {
        let mut terms = vec![self.or_filter()?];
        while self.eat(&Tok::And) {
            terms.push(self.or_filter()?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one") } else { Filter::And(terms) })
    }

    /// `f or f …`: `or` binds tighter than `and` (Heroic's grammar).
    fn or_filter(&mut self) -> R<Filter> {
        let mut terms = vec![self.unary_filter()?];
        while self.eat(&Tok::Or) {
            terms.push(self.unary_filter()?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one") } else { Filter::Or(terms) })
    }

    fn unary_filter(&mut self) -> R<Filter> {
        self.nested("filter", MAX_FILTER_DEPTH, Self::filter_atom)
    }

    fn filter_atom(&mut self) -> R<Filter> {
        match self.peek() {
            // `!` is the loosest operator: its operand is the whole filter to
            // its right (`!a = 1 and b = 2` is `!(a = 1 and b = 2)`).
            Tok::Bang => {
                self.bump();
                Ok(Filter::not(self.filter()?))
            }
            // Heroic's grammar has no prefix `not`: refused as it is there,
            // with the way to write it.
            Tok::Not => Err(QueryError::parse(
                self.pos(),
                "unexpected 'not': it is only valid in 'not in'; negate a filter with '!' (!(a = b))",
            )),
            Tok::LParen => {
                self.bump();
                let f = self.filter()?;
                self.expect(&Tok::RParen, "')', 'and' or 'or'")?;
                Ok(f)
            }
            Tok::True => {
                self.bump();
                Ok(Filter::True)
            }
            Tok::False => {
                self.bump();
                Ok(Filter::False)
            }
            Tok::Plus => {
                self.bump();
                Ok(Filter::has_tag(self.value("a tag name after '+'")?))
            }
            Tok::SKey => {
                self.bump();
                let negate = match self.peek() {
                    Tok::Eq => false,
                    Tok::NotEq => true,
                    _ => return self.error("'=' or '!=' after $key"),
                };
                self.bump();
                let f = Filter::key(self.value("a key value")?);
                Ok(if negate { Filter::not(f) } else { f })
            }
            _ => {
                let key = self.value("a filter (tag = value, +tag, $key = value, true, false, !, not or '(')")?;
                let op_tok = self.bump();
                let f = match op_tok.tok {
                    Tok::Eq => Filter::match_tag(key, self.value("a value")?),
                    Tok::NotEq => Filter::not(Filter::match_tag(key, self.value("a value")?)),
                    Tok::Prefix => Filter::starts_with(key, self.value("a prefix")?),
                    Tok::NotPrefix => Filter::not(Filter::starts_with(key, self.value("a prefix")?)),
                    Tok::Regex => Filter::regex(key, self.value("a regular expression")?),
                    Tok::NotRegex => Filter::not(Filter::regex(key, self.value("a regular expression")?)),
                    Tok::In => self.in_list(key)?,
                    Tok::Not => {
                        self.expect(&Tok::In, "'in' after 'not'")?;
                        Filter::not(self.in_list(key)?)
                    }
                    other => {
                        return Err(QueryError::parse(
                            op_tok.pos,
                            format!(
                                "expected a filter operator (=, !=, ^, !^, ~, !~, in, not in), found {}",
                                other.describe()
                            ),
                        ))
                    }
                };
                Ok(f)
            }
        }
    }

    fn in_list(&mut self, key: String) -> R<Filter> {
        let values = match self.peek() {
            Tok::LBracket | Tok::LCurly => {
                let close = if self.bump().tok == Tok::LBracket { Tok::RBracket } else { Tok::RCurly };
                let mut values = Vec::new();
                if !self.eat(&close) {
                    loop {
                        values.push(self.value("a value")?);
                        if self.eat(&close) {
                            break;
                        }
                        self.expect(&Tok::Comma, "',' or the end of the list")?;
                    }
                }
                values
            }
            _ => vec![self.value("a list of values ([a, b])")?],
        };
        Ok(Filter::Or(values.into_iter().map(|v| Filter::match_tag(key.clone(), v)).collect()))
    }

    /// A literal used as a string (tag names and values): any single token
    /// that is a string, identifier, number or duration, taken as written.
    fn value(&mut self, expected: &str) -> R<String> {
        match self.peek() {
            Tok::Quoted(_)
            | Tok::Simple(_)
            | Tok::Identifier(_)
            | Tok::Integer(_)
            | Tok::Float(_)
            | Tok::Duration(..)
            | Tok::TimeLit(_)
            | Tok::DateLit(_)
            | Tok::True
            | Tok::False => Ok(self.bump().text),
            _ => self.error(expected),
        }
    }
}
