//! Templates: minijinja with strict undefined, no auto-escape, no clock, randomness or environment.
//!
//! Every template is compiled once and rendered per expanded shot. Plain strings (no `{{`, `{%`
//! or `{#`) skip the engine entirely, which keeps planning of large tables fast. The loader used
//! by `prompt_file` and `{% include %}` only reads files inside the manifest's folder.
//!
//! A template is a program, and the manifest may come from someone else: every render has a fuel
//! budget (engine steps) and its output a size cap, so `range(100000)` nested in a loop or
//! `"x" * 100000` repeated ends as an error naming the field instead of eating the machine.

mod sandbox;

use std::collections::HashSet;
use std::path::Path;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

pub use sandbox::sandboxed_loader;

/// A compiled template handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compiled {
    /// Text without template syntax: rendered as-is.
    Literal(String),
    /// A template registered in the environment under this name.
    Named(String),
}

/// A template problem: compile or render.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub message: String,
    /// 1-based line inside the template text, when known.
    pub line: Option<usize>,
}

impl From<minijinja::Error> for TemplateError {
    fn from(e: minijinja::Error) -> Self {
        let mut message = e.kind().to_string();
        if let Some(detail) = e.detail() {
            message = format!("{message}: {detail}");
        }
        if e.kind() == minijinja::ErrorKind::UndefinedError {
            message.push_str(" (a name used in the template does not exist here)");
        }
        let mut source = std::error::Error::source(&e);
        while let Some(inner) = source {
            message = format!("{message}: {inner}");
            source = inner.source();
        }
        TemplateError {
            message,
            line: e.line(),
        }
    }
}

/// Engine steps one render may take (a loop iteration costs a few).
pub const FUEL_PER_RENDER: u64 = 200_000;
/// Most bytes one rendered value may have: 20 times the longest prompt the provider takes.
pub const MAX_RENDERED_BYTES: usize = 100 * 1024;

/// The template environment of one manifest.
pub struct Templates {
    env: Environment<'static>,
    count: usize,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("count", &self.count)
            .finish()
    }
}

/// True when `text` contains template syntax.
pub fn is_template(text: &str) -> bool {
    text.contains("{{") || text.contains("{%") || text.contains("{#")
}

impl Templates {
    /// An environment whose loader reads only inside `root` (the manifest's folder), files of
    /// at most `max_file_bytes`.
    pub fn new(root: &Path, max_file_bytes: u64) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_loader(sandboxed_loader(root.to_owned(), max_file_bytes));
        env.set_fuel(Some(FUEL_PER_RENDER));
        Templates { env, count: 0 }
    }

    /// Compiles `source`; `label` names it in errors (e.g. `shots[2].prompt`).
    pub fn compile(&mut self, label: &str, source: &str) -> Result<Compiled, TemplateError> {
        if !is_template(source) {
            return Ok(Compiled::Literal(source.to_owned()));
        }
        self.count += 1;
        let name = format!("<{label}#{}>", self.count);
        self.env
            .add_template_owned(name.clone(), source.to_owned())?;
        Ok(Compiled::Named(name))
    }

    /// Compiles a `when:` filter expression as a template that renders `1` when it holds.
    pub fn compile_condition(
        &mut self,
        label: &str,
        expr: &str,
    ) -> Result<Compiled, TemplateError> {
        if expr.contains("%}") || expr.contains("{%") || expr.contains("{{") {
            return Err(TemplateError {
                message: "`when` is an expression, e.g. `row.active == 'yes'`, not a template"
                    .into(),
                line: None,
            });
        }
        let source = format!("{{% if {expr} %}}1{{% endif %}}");
        self.compile(label, &source)
    }

    /// Loads and compiles a template file relative to the manifest's folder.
    pub fn compile_file(&mut self, rel: &str) -> Result<Compiled, TemplateError> {
        self.env.get_template(rel)?;
        Ok(Compiled::Named(rel.to_owned()))
    }

    pub fn render(&self, t: &Compiled, ctx: &Value) -> Result<String, TemplateError> {
        let name = match t {
            Compiled::Literal(s) => return Ok(s.clone()),
            Compiled::Named(name) => name,
        };
        let template = self.env.get_template(name)?;
        let mut out = Capped::default();
        match template.render_captured_to(ctx, &mut out) {
            Ok(_) => String::from_utf8(out.bytes).map_err(|_| TemplateError {
                message: "the template rendered text that is not valid UTF-8".into(),
                line: None,
            }),
            Err(_) if out.overflowed => Err(TemplateError {
                message: format!(
                    "renders to more than {} KiB, more than any field may hold",
                    MAX_RENDERED_BYTES / 1024
                ),
                line: None,
            }),
            Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => Err(TemplateError {
                message: format!(
                    "takes more than {FUEL_PER_RENDER} steps to render (a loop that runs too long?)"
                ),
                line: e.line(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Evaluates a condition compiled by [`Templates::compile_condition`].
    pub fn holds(&self, t: &Compiled, ctx: &Value) -> Result<bool, TemplateError> {
        Ok(self.render(t, ctx)? == "1")
    }

    /// Names the template reads from its context, dotted for attribute access (`row.sku`).
    pub fn variables(&self, t: &Compiled) -> HashSet<String> {
        match t {
            Compiled::Literal(_) => HashSet::new(),
            Compiled::Named(name) => self
                .env
                .get_template(name)
                .map(|t| t.undeclared_variables(true))
                .unwrap_or_default(),
        }
    }

    /// True when the template reads the top-level name `var`.
    pub fn uses(&self, t: &Compiled, var: &str) -> bool {
        self.variables(t)
            .iter()
            .any(|v| v == var || v.strip_prefix(var).is_some_and(|r| r.starts_with('.')))
    }
}

/// Output that refuses to grow past [`MAX_RENDERED_BYTES`].
#[derive(Default)]
struct Capped {
    bytes: Vec<u8>,
    overflowed: bool,
}

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len() + buf.len() > MAX_RENDERED_BYTES {
            self.overflowed = true;
            return Err(std::io::Error::other("rendered value too large"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn strict_undefined_and_no_escape() {
        let mut t = Templates::new(Path::new("."), 1 << 20);
        let c = t.compile("x", "{{ a }} <b>&").unwrap();
        assert_eq!(t.render(&c, &context! { a => "<i>" }).unwrap(), "<i> <b>&");
        let err = t.render(&c, &context! {}).unwrap_err();
        assert!(err.message.contains("undefined"), "{}", err.message);
    }

    #[test]
    fn no_clock_random_or_env_functions() {
        let mut t = Templates::new(Path::new("."), 1 << 20);
        for f in ["now()", "random()", "env('HOME')", "cycler(1)"] {
            let c = t.compile("x", &format!("{{{{ {f} }}}}")).unwrap();
            assert!(t.render(&c, &context! {}).is_err(), "{f} must not exist");
        }
    }

    #[test]
    fn conditions_and_variables() {
        let mut t = Templates::new(Path::new("."), 1 << 20);
        let c = t.compile_condition("w", "row.a == 'yes'").unwrap();
        assert!(
            t.holds(&c, &context! { row => context! { a => "yes" } })
                .unwrap()
        );
        assert!(
            !t.holds(&c, &context! { row => context! { a => "no" } })
                .unwrap()
        );
        let id = t.compile("id", "x-{{ take }}-{{ row.sku }}").unwrap();
        assert!(t.uses(&id, "take"));
        assert!(t.uses(&id, "row"));
        assert!(!t.uses(&id, "matrix"));
    }

    #[test]
    fn work_and_output_are_bounded() {
        let mut t = Templates::new(Path::new("."), 1 << 20);
        let loops = t
            .compile(
                "x",
                "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            )
            .unwrap();
        let err = t.render(&loops, &context! {}).unwrap_err();
        assert!(err.message.contains("steps to render"), "{}", err.message);
        let big = t
            .compile(
                "x",
                "{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}",
            )
            .unwrap();
        let err = t.render(&big, &context! {}).unwrap_err();
        assert!(err.message.contains("more than 100 KiB"), "{}", err.message);
        let fine = t
            .compile("x", "{% for i in range(1000) %}{{ i }}{% endfor %}")
            .unwrap();
        assert_eq!(t.render(&fine, &context! {}).unwrap().len(), 2890);
    }
}
