//! The seam between the validator and the built-in kinds.
//!
//! The main type is the [`KindRegistry`] trait. `config` knows kinds only through it: the
//! command that loads a pipeline hands in the registry (`stages::REGISTRY`), so the validated
//! model holds a kind's name and its `with:` tree, never a kind's runtime type, and `config` can
//! be read and tested without the stage runtime.

use super::validate::Validator;
use super::yaml::Node;

/// Every built-in kind, by its `uses:` name.
pub(crate) trait KindRegistry: Sync {
    /// The `uses:` names, in the order help texts list them.
    fn names(&self) -> Vec<&'static str>;

    /// Checks a `with:` tree, already expanded with the values known at validation, for `kind`;
    /// errors go to `v`. Returns whether the kind, so configured, has a rollback, or `None` when
    /// it is invalid.
    fn check(&self, kind: &str, with: &Node, v: &mut Validator<'_>) -> Option<bool>;
}
