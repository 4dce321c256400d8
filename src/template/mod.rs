//! Templates: minijinja with strict undefined, no auto-escape, no clock, randomness or environment.
//!
//! Every template is compiled once and rendered per expanded shot. Plain strings (no `{{`, `{%`
//! or `{#`) skip the engine entirely, which keeps planning of large tables fast. The loader used
//! by `prompt_file` and `{% include %}` only reads files inside the manifest's folder.

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
    /// An environment whose loader reads only inside `root` (the manifest's folder).
    pub fn new(root: &Path) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_loader(sandboxed_loader(root.to_owned()));
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
        match t {
            Compiled::Literal(s) => Ok(s.clone()),
            Compiled::Named(name) => Ok(self.env.get_template(name)?.render(ctx)?),
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

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn strict_undefined_and_no_escape() {
        let mut t = Templates::new(Path::new("."));
        let c = t.compile("x", "{{ a }} <b>&").unwrap();
        assert_eq!(t.render(&c, &context! { a => "<i>" }).unwrap(), "<i> <b>&");
        let err = t.render(&c, &context! {}).unwrap_err();
        assert!(err.message.contains("undefined"), "{}", err.message);
    }

    #[test]
    fn no_clock_random_or_env_functions() {
        let mut t = Templates::new(Path::new("."));
        for f in ["now()", "random()", "env('HOME')", "cycler(1)"] {
            let c = t.compile("x", &format!("{{{{ {f} }}}}")).unwrap();
            assert!(t.render(&c, &context! {}).is_err(), "{f} must not exist");
        }
    }

    #[test]
    fn conditions_and_variables() {
        let mut t = Templates::new(Path::new("."));
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
}
