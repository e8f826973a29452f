//! The part of Go's text/template that `--format` strings use with the docker CLI, over JSON
//! values: fields (`{{.A.B}}`, `{{$v.A}}`), `{{range}}` (with `$k, $v :=`), `{{if}}`,
//! `{{else}}`, `{{end}}`, `{{-`/`-}}` trimming, parentheses, and the functions `json`,
//! `index`, `len`, `join`, `upper`, `lower`, `title`, `split`, `printf`, `println`, with
//! `|` pipelines (`{{.Name | upper}}`). Values print as Go prints them: maps as
//! `map[k:v]`, lists as `[a b]`, null as `<no value>`.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Result};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Dot(Vec<String>),
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Num(f64),
    Open,
    Close(Vec<String>),
    Pipe,
    Comma,
    Assign,
}

#[derive(Debug)]
enum Node {
    Text(String),
    Out(Vec<Token>),
    Range {
        key: Option<String>,
        value: Option<String>,
        expr: Vec<Token>,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    If {
        expr: Vec<Token>,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
}

fn fields(path: &str) -> Vec<String> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn lex(action: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let chars: Vec<char> = action.chars().collect();
    let mut i = 0;
    let word_end = |mut j: usize| {
        while j < chars.len() && !chars[j].is_whitespace() && !"()|,\"".contains(chars[j]) {
            j += 1;
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                let j = word_end(i + 1);
                let rest: String = chars[i + 1..j].iter().collect();
                out.push(Token::Close(fields(&rest)));
                i = j;
            }
            '|' => {
                out.push(Token::Pipe);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '"' | '`' => {
                let mut s = String::new();
                let mut j = i + 1;
                while j < chars.len() && chars[j] != c {
                    if c == '"' && chars[j] == '\\' && j + 1 < chars.len() {
                        j += 1;
                        s.push(match chars[j] {
                            'n' => '\n',
                            't' => '\t',
                            other => other,
                        });
                    } else {
                        s.push(chars[j]);
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    bail!("template: unterminated string in {{{{{action}}}}}");
                }
                out.push(Token::Str(s));
                i = j + 1;
            }
            _ => {
                let j = word_end(i);
                let word: String = chars[i..j].iter().collect();
                i = j;
                if word == ":=" {
                    out.push(Token::Assign);
                } else if let Some(path) = word.strip_prefix('.') {
                    out.push(Token::Dot(fields(path)));
                } else if let Some(var) = word.strip_prefix('$') {
                    let (name, path) = var.split_once('.').unwrap_or((var, ""));
                    out.push(Token::Var(name.to_string(), fields(path)));
                } else if let Ok(n) = word.parse::<f64>() {
                    out.push(Token::Num(n));
                } else {
                    out.push(Token::Ident(word));
                }
            }
        }
    }
    Ok(out)
}

/// Splits the template into text and actions (`{{- x -}}` trims the neighbouring spaces).
fn split(tpl: &str) -> Result<Vec<(bool, String)>> {
    let mut parts: Vec<(bool, String)> = Vec::new();
    let mut rest = tpl;
    while let Some(start) = rest.find("{{") {
        let mut text = rest[..start].to_string();
        let end = rest[start..]
            .find("}}")
            .ok_or_else(|| anyhow!("template parsing error: unclosed action in {tpl:?}"))?;
        let mut action = &rest[start + 2..start + end];
        if let Some(a) = action.strip_prefix('-') {
            text = text.trim_end().to_string();
            action = a;
        }
        let trim_after = action.ends_with('-');
        if trim_after {
            action = &action[..action.len() - 1];
        }
        parts.push((false, text));
        parts.push((true, action.trim().to_string()));
        rest = &rest[start + end + 2..];
        if trim_after {
            rest = rest.trim_start();
        }
    }
    parts.push((false, rest.to_string()));
    Ok(parts)
}

/// Parses nodes until `{{end}}` or `{{else}}` (returned as the stop word) or the input ends.
fn parse(parts: &mut Parts) -> Result<(Vec<Node>, Option<String>)> {
    let mut nodes = Vec::new();
    while let Some((is_action, s)) = parts.next() {
        if !is_action {
            if !s.is_empty() {
                nodes.push(Node::Text(s));
            }
            continue;
        }
        let mut words = s.splitn(2, char::is_whitespace);
        let head = words.next().unwrap_or_default();
        let tail = words.next().unwrap_or_default().trim();
        match head {
            "end" | "else" => return Ok((nodes, Some(head.to_string()))),
            "range" => {
                let mut tokens = lex(tail)?;
                let (mut key, mut value) = (None, None);
                if let Some(pos) = tokens.iter().position(|t| *t == Token::Assign) {
                    let vars: Vec<String> = tokens[..pos]
                        .iter()
                        .filter_map(|t| match t {
                            Token::Var(v, p) if p.is_empty() => Some(v.clone()),
                            _ => None,
                        })
                        .collect();
                    match vars.as_slice() {
                        [v] => value = Some(v.clone()),
                        [k, v] => {
                            key = Some(k.clone());
                            value = Some(v.clone());
                        }
                        _ => bail!("template: bad range declaration in {{{{{s}}}}}"),
                    }
                    tokens.drain(..=pos);
                }
                let (body, otherwise) = block(parts, &s)?;
                nodes.push(Node::Range {
                    key,
                    value,
                    expr: tokens,
                    body,
                    otherwise,
                });
            }
            "if" => {
                let expr = lex(tail)?;
                let (body, otherwise) = block(parts, &s)?;
                nodes.push(Node::If {
                    expr,
                    body,
                    otherwise,
                });
            }
            _ => nodes.push(Node::Out(lex(&s)?)),
        }
    }
    Ok((nodes, None))
}

type Parts = std::iter::Peekable<std::vec::IntoIter<(bool, String)>>;

/// The body of a `range` or `if` and its `else` part, up to its `{{end}}`.
fn block(parts: &mut Parts, opener: &str) -> Result<(Vec<Node>, Vec<Node>)> {
    let (body, stop) = parse(parts)?;
    let (otherwise, stop) = match stop.as_deref() {
        Some("else") => parse(parts)?,
        _ => (Vec::new(), stop),
    };
    if stop.as_deref() != Some("end") {
        bail!("missing {{{{end}}}} for {{{{{opener}}}}}");
    }
    Ok((body, otherwise))
}

fn get_path(v: &Value, path: &[String]) -> Result<Value> {
    let mut cur = v.clone();
    for key in path {
        cur = match &cur {
            Value::Object(m) => m.get(key).cloned().unwrap_or(Value::Null),
            Value::Null => Value::Null,
            _ => bail!(
                "template: can't evaluate field {key} in type {}",
                type_name(&cur)
            ),
        };
    }
    Ok(cur)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

/// How Go's fmt prints a value.
pub fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_inner).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", go_inner(&m[k.as_str()])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        other => other.to_string(),
    }
}

fn go_inner(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        other => go_string(other),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

struct Scope<'a> {
    dot: Value,
    root: &'a Value,
    vars: HashMap<String, Value>,
}

impl Scope<'_> {
    /// Evaluates a pipeline: commands separated by `|`, each one's result the last argument
    /// of the next.
    fn eval(&self, tokens: &[Token]) -> Result<Value> {
        let mut result: Option<Value> = None;
        for command in tokens.split(|t| *t == Token::Pipe) {
            result = Some(self.command(command, result)?);
        }
        result.ok_or_else(|| anyhow!("template: empty action"))
    }

    fn command(&self, tokens: &[Token], piped: Option<Value>) -> Result<Value> {
        let mut args: Vec<Value> = Vec::new();
        let mut func: Option<String> = None;
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                Token::Ident(name) if i == 0 => func = Some(name.clone()),
                Token::Ident(name) => bail!("template: function {name} in an argument position"),
                Token::Open => {
                    let mut depth = 0;
                    let mut j = i;
                    let close = loop {
                        match tokens.get(j) {
                            Some(Token::Open) => depth += 1,
                            Some(Token::Close(path)) => {
                                depth -= 1;
                                if depth == 0 {
                                    break path.clone();
                                }
                            }
                            Some(_) => {}
                            None => bail!("template: unclosed parenthesis"),
                        }
                        j += 1;
                    };
                    let inner = self.eval(&tokens[i + 1..j])?;
                    args.push(get_path(&inner, &close)?);
                    i = j;
                }
                Token::Dot(path) => args.push(get_path(&self.dot, path)?),
                Token::Var(name, path) => {
                    let base = if name.is_empty() {
                        self.root.clone()
                    } else {
                        self.vars
                            .get(name)
                            .cloned()
                            .ok_or_else(|| anyhow!("template: undefined variable ${name}"))?
                    };
                    args.push(get_path(&base, path)?);
                }
                Token::Str(s) => args.push(Value::String(s.clone())),
                Token::Num(n) if n.fract() == 0.0 => args.push(serde_json::json!(*n as i64)),
                Token::Num(n) => args.push(serde_json::json!(n)),
                Token::Close(_) => bail!("template: unexpected )"),
                Token::Pipe | Token::Comma | Token::Assign => {
                    bail!("template: unexpected {:?}", tokens[i])
                }
            }
            i += 1;
        }
        args.extend(piped);
        match func {
            None => match args.as_slice() {
                [one] => Ok(one.clone()),
                _ => bail!("template: {} values in one command", args.len()),
            },
            Some(f) => call(&f, &args),
        }
    }
}

fn call(f: &str, args: &[Value]) -> Result<Value> {
    let one = || {
        args.first()
            .cloned()
            .ok_or_else(|| anyhow!("template: {f} needs an argument"))
    };
    let text = |v: &Value| go_string(v);
    Ok(match f {
        "json" => Value::String(one()?.to_string()),
        "len" => serde_json::json!(match one()? {
            Value::Array(a) => a.len(),
            Value::Object(m) => m.len(),
            Value::String(s) => s.len(),
            Value::Null => 0,
            other => bail!("template: len of {}", type_name(&other)),
        }),
        "index" => {
            let mut cur = one()?;
            for key in &args[1..] {
                cur = match (&cur, key) {
                    (Value::Object(m), k) => m.get(&text(k)).cloned().unwrap_or(Value::Null),
                    (Value::Array(a), Value::Number(n)) => n
                        .as_f64()
                        .and_then(|i| a.get(i as usize).cloned())
                        .ok_or_else(|| anyhow!("template: index out of range: {n}"))?,
                    (Value::Null, _) => Value::Null,
                    (other, _) => bail!("template: can't index item of type {}", type_name(other)),
                };
            }
            cur
        }
        "join" => {
            let sep = args.get(1).map(text).unwrap_or_default();
            match one()? {
                Value::Array(a) => {
                    Value::String(a.iter().map(go_inner).collect::<Vec<_>>().join(&sep))
                }
                other => Value::String(text(&other)),
            }
        }
        "split" => {
            let s = text(&one()?);
            let sep = args.get(1).map(text).unwrap_or_default();
            Value::Array(
                s.split(sep.as_str())
                    .map(|p| Value::String(p.into()))
                    .collect(),
            )
        }
        "upper" => Value::String(text(&one()?).to_uppercase()),
        "lower" => Value::String(text(&one()?).to_lowercase()),
        "title" => {
            let s = text(&one()?);
            let mut c = s.chars();
            Value::String(match c.next() {
                Some(first) => first.to_uppercase().chain(c).collect(),
                None => String::new(),
            })
        }
        "println" => Value::String(format!(
            "{}\n",
            args.iter().map(text).collect::<Vec<_>>().join(" ")
        )),
        "print" => Value::String(args.iter().map(text).collect::<Vec<_>>().join("")),
        "printf" => {
            let fmt = text(&one()?);
            let mut out = String::new();
            let mut rest = args[1..].iter();
            let mut chars = fmt.chars().peekable();
            while let Some(c) = chars.next() {
                if c != '%' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('%') => out.push('%'),
                    Some('q') => {
                        out.push_str(&format!("{:?}", rest.next().map(text).unwrap_or_default()))
                    }
                    Some(_) => out.push_str(&rest.next().map(text).unwrap_or_default()),
                    None => out.push('%'),
                }
            }
            Value::String(out)
        }
        other => bail!("template: function {other:?} not defined"),
    })
}

fn exec(nodes: &[Node], scope: &mut Scope<'_>, out: &mut String) -> Result<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Out(tokens) => out.push_str(&go_string(&scope.eval(tokens)?)),
            Node::If {
                expr,
                body,
                otherwise,
            } => {
                if truthy(&scope.eval(expr)?) {
                    exec(body, scope, out)?;
                } else {
                    exec(otherwise, scope, out)?;
                }
            }
            Node::Range {
                key,
                value,
                expr,
                body,
                otherwise,
            } => {
                let items: Vec<(Value, Value)> = match scope.eval(expr)? {
                    Value::Array(a) => a
                        .into_iter()
                        .enumerate()
                        .map(|(i, v)| (serde_json::json!(i), v))
                        .collect(),
                    Value::Object(m) => {
                        let mut entries: Vec<(String, Value)> = m.into_iter().collect();
                        entries.sort_by(|a, b| a.0.cmp(&b.0));
                        entries
                            .into_iter()
                            .map(|(k, v)| (Value::String(k), v))
                            .collect()
                    }
                    Value::Null => Vec::new(),
                    other => bail!("template: range can't iterate over {}", go_string(&other)),
                };
                if items.is_empty() {
                    exec(otherwise, scope, out)?;
                    continue;
                }
                let saved = scope.dot.clone();
                for (k, v) in items {
                    if let Some(name) = key {
                        scope.vars.insert(name.clone(), k);
                    }
                    if let Some(name) = value {
                        scope.vars.insert(name.clone(), v.clone());
                    }
                    scope.dot = v;
                    exec(body, scope, out)?;
                }
                scope.dot = saved;
            }
        }
    }
    Ok(())
}

/// Renders `tpl` over `v` (`\t` and `\n` in the template stand for tab and newline, as the
/// docker CLI allows).
pub fn render(tpl: &str, v: &Value) -> Result<String> {
    let tpl = tpl.replace("\\t", "\t").replace("\\n", "\n");
    let mut parts = split(&tpl)
        .map_err(|e| anyhow!("{e}"))?
        .into_iter()
        .peekable();
    let (nodes, stop) = parse(&mut parts).map_err(|e| anyhow!("template parsing error: {e}"))?;
    if let Some(word) = stop {
        bail!("template parsing error: unexpected {{{{{word}}}}}");
    }
    let mut scope = Scope {
        dot: v.clone(),
        root: v,
        vars: HashMap::new(),
    };
    let mut out = String::new();
    exec(&nodes, &mut scope, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(tpl: &str, v: &Value) -> String {
        render(tpl, v).unwrap_or_else(|e| panic!("{tpl}: {e}"))
    }

    #[test]
    fn fields_json_and_go_printing() {
        let v = json!({"Id": "sha256:x", "Config": {"Cmd": ["sh", "-c"], "Env": null}, "N": 3, "M": {"b": 2, "a": "x"}});
        assert_eq!(r("{{.Id}}", &v), "sha256:x");
        assert_eq!(r("{{.Config.Cmd}}", &v), "[sh -c]");
        assert_eq!(r("{{json .Config.Cmd}}", &v), r#"["sh","-c"]"#);
        assert_eq!(r("n={{.N}}\\t!", &v), "n=3\t!");
        assert_eq!(r("{{.M}}", &v), "map[a:x b:2]");
        assert_eq!(r("{{.Config.Env}}", &v), "<no value>");
        assert_eq!(r("{{.Missing}}", &v), "<no value>");
        assert!(render("{{.Id.X}}", &v).is_err());
        assert!(render("{{nosuch .Id}}", &v).is_err());
        assert!(render("{{.Id", &v).is_err());
        assert!(render("{{end}}", &v).is_err());
        assert!(render("{{range .Config.Cmd}}x", &v).is_err());
        assert!(render("{{if .N}}x{{else}}y", &v).is_err());
    }

    #[test]
    fn range_if_index_and_functions() {
        let v = json!({
            "NetworkSettings": {"Networks": {"b": {"IPAddress": "10.0.0.2"}, "a": {"IPAddress": "10.1.0.2"}}},
            "Ports": {"80/tcp": [{"HostPort": "8080"}]},
            "Names": ["/web", "/x"],
            "Empty": [],
            "Labels": {"com.example.k": "v"}
        });
        assert_eq!(
            r(
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                &v
            ),
            "10.1.0.2 10.0.0.2 "
        );
        assert_eq!(
            r(
                "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{$v.IPAddress}};{{end}}",
                &v
            ),
            "a=10.1.0.2;b=10.0.0.2;"
        );
        assert_eq!(
            r(r#"{{(index (index .Ports "80/tcp") 0).HostPort}}"#, &v),
            "8080"
        );
        assert_eq!(r(r#"{{index .Labels "com.example.k"}}"#, &v), "v");
        assert_eq!(r("{{len .Names}} {{join .Names \",\"}}", &v), "2 /web,/x");
        assert_eq!(r("{{if .Empty}}yes{{else}}no{{end}}", &v), "no");
        assert_eq!(r("{{range .Empty}}x{{else}}none{{end}}", &v), "none");
        assert_eq!(
            r("{{range $i, $n := .Names}}{{$i}}:{{$n}} {{end}}", &v),
            "0:/web 1:/x "
        );
        assert_eq!(r("{{index .Names 1 | upper}}", &v), "/X");
        assert_eq!(r("{{printf \"%s-%v\" \"a\" 3}}", &v), "a-3");
        assert_eq!(
            r("{{range .Names}}{{$.Names}}{{end}}", &v),
            "[/web /x][/web /x]"
        );
        assert_eq!(r("a {{- \" b \" -}} c", &v), "a b c");
    }
}
