//! gettext's `Plural-Forms: nplurals=N; plural=EXPR;`: EXPR is a C expression of `n` (`?:`, `||`,
//! `&&`, comparisons, `+ - * / %`, `!`, parentheses, integers), evaluated here by a small
//! recursive-descent parser. Plain `std` (the build script checks every catalog's rule with it).

/// A language's plural rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub nplurals: usize,
    expr: String,
}

impl Default for Rule {
    /// English's (and gettext's default): `n != 1`.
    fn default() -> Self {
        Self { nplurals: 2, expr: "n != 1".into() }
    }
}

impl Rule {
    /// Reads a `Plural-Forms` header value. The rule is checked on 0..=200: it must parse and
    /// always pick a form below `nplurals`.
    pub fn parse(header: &str) -> Result<Self, String> {
        let mut nplurals = None;
        let mut expr = None;
        for part in header.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some((k, v)) if k.trim() == "nplurals" => {
                    nplurals = Some(v.trim().parse::<usize>().map_err(|_| format!("nplurals {v:?} is not a number"))?)
                }
                Some((k, v)) if k.trim() == "plural" => expr = Some(v.trim().to_owned()),
                _ => return Err(format!("Plural-Forms: cannot read {part:?}")),
            }
        }
        let rule = Self {
            nplurals: nplurals.filter(|n| *n >= 1).ok_or("Plural-Forms: nplurals missing or 0")?,
            expr: expr.ok_or("Plural-Forms: plural= missing")?,
        };
        for n in 0..=200 {
            let form = rule.eval(n)?;
            if form >= rule.nplurals {
                return Err(format!("Plural-Forms: form {form} for n={n} is not below nplurals={}", rule.nplurals));
            }
        }
        Ok(rule)
    }

    /// The index of the form for `n` (0 when the rule cannot say, which `parse` rules out).
    pub fn form(&self, n: u64) -> usize {
        self.eval(n).ok().filter(|f| *f < self.nplurals).unwrap_or(0)
    }

    fn eval(&self, n: u64) -> Result<usize, String> {
        let mut p = Parser { s: self.expr.as_bytes(), at: 0, n: i128::from(n) };
        let v = p.ternary()?;
        p.skip();
        if p.at != p.s.len() {
            return Err(format!("Plural-Forms: unexpected {:?}", &self.expr[p.at..]));
        }
        usize::try_from(v).map_err(|_| format!("Plural-Forms: negative form for n={n}"))
    }
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
    n: i128,
}

impl Parser<'_> {
    fn skip(&mut self) {
        while self.s.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.skip();
        if self.s[self.at..].starts_with(tok.as_bytes()) {
            // `!` must not eat the start of `!=`, nor `<` of `<=` and so on.
            let next = self.s.get(self.at + tok.len()).copied();
            if matches!(tok, "!" | "<" | ">" | "=") && next == Some(b'=') {
                return false;
            }
            self.at += tok.len();
            true
        } else {
            false
        }
    }

    fn ternary(&mut self) -> Result<i128, String> {
        let cond = self.or()?;
        if self.eat("?") {
            let a = self.ternary()?;
            if !self.eat(":") {
                return Err("Plural-Forms: `?` without `:`".into());
            }
            let b = self.ternary()?;
            return Ok(if cond != 0 { a } else { b });
        }
        Ok(cond)
    }

    fn or(&mut self) -> Result<i128, String> {
        let mut v = self.and()?;
        while self.eat("||") {
            let r = self.and()?;
            v = i128::from(v != 0 || r != 0);
        }
        Ok(v)
    }

    fn and(&mut self) -> Result<i128, String> {
        let mut v = self.cmp()?;
        while self.eat("&&") {
            let r = self.cmp()?;
            v = i128::from(v != 0 && r != 0);
        }
        Ok(v)
    }

    fn cmp(&mut self) -> Result<i128, String> {
        let mut v = self.sum()?;
        loop {
            let op = ["==", "!=", "<=", ">=", "<", ">"].into_iter().find(|op| self.eat(op));
            let Some(op) = op else { return Ok(v) };
            let r = self.sum()?;
            v = i128::from(match op {
                "==" => v == r,
                "!=" => v != r,
                "<=" => v <= r,
                ">=" => v >= r,
                "<" => v < r,
                _ => v > r,
            });
        }
    }

    fn sum(&mut self) -> Result<i128, String> {
        let mut v = self.product()?;
        loop {
            if self.eat("+") {
                v += self.product()?;
            } else if self.eat("-") {
                v -= self.product()?;
            } else {
                return Ok(v);
            }
        }
    }

    fn product(&mut self) -> Result<i128, String> {
        let mut v = self.unary()?;
        loop {
            let op = ["*", "/", "%"].into_iter().find(|op| self.eat(op));
            let Some(op) = op else { return Ok(v) };
            let r = self.unary()?;
            v = match op {
                "*" => v.saturating_mul(r),
                _ if r == 0 => return Err("Plural-Forms: division by zero".into()),
                "/" => v / r,
                _ => v % r,
            };
        }
    }

    fn unary(&mut self) -> Result<i128, String> {
        if self.eat("!") {
            return Ok(i128::from(self.unary()? == 0));
        }
        if self.eat("(") {
            let v = self.ternary()?;
            if !self.eat(")") {
                return Err("Plural-Forms: `(` without `)`".into());
            }
            return Ok(v);
        }
        self.skip();
        if self.s.get(self.at) == Some(&b'n') {
            self.at += 1;
            return Ok(self.n);
        }
        let start = self.at;
        while self.s.get(self.at).is_some_and(u8::is_ascii_digit) {
            self.at += 1;
        }
        std::str::from_utf8(&self.s[start..self.at])
            .ok()
            .and_then(|d| d.parse().ok())
            .ok_or_else(|| format!("Plural-Forms: expected a number or n at byte {start}"))
    }
}
