//! Argument types of the functions the shard runs, as PostgreSQL (with
//! pgvector) declares them, so that an untyped `$n` passed to one gets the
//! type PostgreSQL's function resolution gives it: `pg_sleep($1)` takes a
//! `double precision`, `pg_advisory_xact_lock($1)` a `bigint`.

use crate::wire::types::oid;
use sqlparser::ast::{Expr, Function, Value as SqlValue};

use super::expr::{function_args, function_name};
use super::infer::{infer, Columns, TypeEnv};
use crate::sql::placeholder_index;

const B: u32 = oid::BOOL;
const I4: u32 = oid::INT4;
const I8: u32 = oid::INT8;
const F8: u32 = oid::FLOAT8;
const T: u32 = oid::TEXT;
const O: u32 = oid::OID;
const V: u32 = oid::VECTOR;
const H: u32 = oid::HALFVEC;
const S: u32 = oid::SPARSEVEC;

/// Every declared argument list, per function (a function with defaults
/// has one list per number of arguments it accepts).
const SIGNATURES: &[(&str, &[&[u32]])] = &[
    ("pg_advisory_lock", &[&[I8], &[I4, I4]]),
    ("pg_advisory_xact_lock", &[&[I8], &[I4, I4]]),
    ("pg_try_advisory_lock", &[&[I8], &[I4, I4]]),
    ("pg_try_advisory_xact_lock", &[&[I8], &[I4, I4]]),
    ("pg_advisory_unlock", &[&[I8], &[I4, I4]]),
    ("pg_sleep", &[&[F8]]),
    ("pg_promote", &[&[], &[B], &[B, I4]]),
    ("set_config", &[&[T, T, B]]),
    ("current_setting", &[&[T], &[T, B]]),
    ("to_regtype", &[&[T]]),
    ("to_regclass", &[&[T]]),
    ("format_type", &[&[O, I4]]),
    ("pg_get_userbyid", &[&[O]]),
    ("pg_encoding_to_char", &[&[I4]]),
    ("pg_tablespace_location", &[&[O]]),
    ("pg_table_is_visible", &[&[O]]),
    ("pg_type_is_visible", &[&[O]]),
    ("pg_function_is_visible", &[&[O]]),
    ("col_description", &[&[O, I4]]),
    ("obj_description", &[&[O], &[O, oid::NAME]]),
    ("shobj_description", &[&[O, oid::NAME]]),
    ("pg_get_serial_sequence", &[&[T, T]]),
    ("nextval", &[&[oid::REGCLASS]]),
    ("currval", &[&[oid::REGCLASS]]),
    ("setval", &[&[oid::REGCLASS, I8], &[oid::REGCLASS, I8, B]]),
    ("lower", &[&[T]]),
    ("upper", &[&[T]]),
    ("length", &[&[T], &[oid::BYTEA], &[oid::BIT]]),
    ("abs", &[&[oid::FLOAT4], &[F8], &[oid::INT2], &[I4], &[I8]]),
    ("l2_distance", &[&[V, V], &[H, H], &[S, S]]),
    ("inner_product", &[&[V, V], &[H, H], &[S, S]]),
    ("cosine_distance", &[&[V, V], &[H, H], &[S, S]]),
    ("l1_distance", &[&[V, V], &[H, H], &[S, S]]),
    ("hamming_distance", &[&[oid::BIT, oid::BIT]]),
    ("jaccard_distance", &[&[oid::BIT, oid::BIT]]),
    ("vector_dims", &[&[V], &[H]]),
    ("vector_cmp", &[&[V, V]]),
    ("halfvec_cmp", &[&[H, H]]),
    ("sparsevec_cmp", &[&[S, S]]),
    ("round", &[&[F8, I4]]),
    ("vector_norm", &[&[V]]),
    ("l2_norm", &[&[V], &[H], &[S]]),
    ("l2_normalize", &[&[V], &[H], &[S]]),
    ("binary_quantize", &[&[V], &[H]]),
    ("subvector", &[&[V, I4, I4], &[H, I4, I4]]),
];

/// Whether a value of type `from` passes implicitly as `to` (the numeric
/// widenings and a vector to a halfvec).
fn implicit(from: u32, to: u32) -> bool {
    const NUMERIC_ORDER: [u32; 5] = [oid::INT2, I4, I8, oid::FLOAT4, F8];
    let rank = |t| NUMERIC_ORDER.iter().position(|&n| n == t);
    from == to
        || matches!((rank(from), rank(to)), (Some(a), Some(b)) if a <= b)
        || (from == V && to == H)
        || (from == oid::VARCHAR && to == T)
}

/// The type of argument `position` of `name` when the other arguments
/// have the types in `args` (`None`: untyped), as PostgreSQL resolves it:
/// the one candidate that fits; among several, the exact fits; among those
/// that still differ at `position`, a string type, else `double precision`
/// when every candidate is numeric there. `None` when it stays ambiguous
/// or `name` is not known.
fn argument_type(name: &str, position: usize, args: &[Option<u32>]) -> Option<u32> {
    let (_, lists) = SIGNATURES.iter().find(|(n, _)| *n == name)?;
    let fits = |list: &&&[u32], exact: bool| {
        list.len() == args.len()
            && list.iter().zip(args).all(|(&want, got)| match got {
                None => true,
                Some(t) if exact => *t == want,
                Some(t) => implicit(*t, want),
            })
    };
    let mut candidates: Vec<&[u32]> = lists.iter().filter(|l| fits(l, false)).copied().collect();
    let exact: Vec<&[u32]> = lists.iter().filter(|l| fits(l, true)).copied().collect();
    if !exact.is_empty() {
        candidates = exact;
    }
    let types: Vec<u32> = candidates.iter().map(|l| l[position]).collect();
    let first = *types.first()?;
    if types.iter().all(|&t| t == first) {
        return Some(first);
    }
    if types.contains(&T) {
        return Some(T);
    }
    let numeric = [oid::INT2, I4, I8, oid::FLOAT4, F8];
    (types.contains(&F8) && types.iter().all(|t| numeric.contains(t))).then_some(F8)
}

/// The type of `expr` as an argument: `None` for a string literal, NULL
/// or a parameter of no given type, which PostgreSQL calls `unknown`.
fn typed(expr: &Expr, cols: &dyn Columns, env: &TypeEnv) -> Option<u32> {
    match expr {
        Expr::Nested(e) => typed(e, cols, env),
        Expr::Value(v) => match &v.value {
            SqlValue::Placeholder(p) => placeholder_index(p)
                .and_then(|n| env.params.get(n - 1))
                .copied()
                .filter(|&t| t != 0),
            SqlValue::Number(..) | SqlValue::Boolean(_) => infer(expr, cols, env).ok().map(|t| t.0),
            _ => None,
        },
        _ => infer(expr, cols, env).ok().map(|t| t.0),
    }
}

/// The type PostgreSQL gives an untyped parameter passed as argument
/// `position` of `call`, the other arguments typed by `cols` and `env`.
pub fn parameter_type(
    call: &Function,
    position: usize,
    cols: &dyn Columns,
    env: &TypeEnv,
) -> Option<u32> {
    let args = function_args(call).ok()?;
    let types: Vec<Option<u32>> = args
        .iter()
        .enumerate()
        .map(|(i, a)| (i != position).then(|| typed(a, cols, env)).flatten())
        .collect();
    argument_type(&function_name(call), position, &types)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_like_postgres() {
        assert_eq!(argument_type("pg_advisory_xact_lock", 0, &[None]), Some(I8));
        assert_eq!(
            argument_type("pg_advisory_lock", 1, &[None, None]),
            Some(I4)
        );
        assert_eq!(argument_type("pg_promote", 1, &[None, None]), Some(I4));
        assert_eq!(argument_type("abs", 0, &[None]), Some(F8));
        assert_eq!(argument_type("length", 0, &[None]), Some(T));
        assert_eq!(
            argument_type("subvector", 1, &[Some(V), None, None]),
            Some(I4)
        );
        assert_eq!(argument_type("l2_distance", 1, &[Some(H), None]), Some(H));
        assert_eq!(argument_type("l2_distance", 0, &[None, None]), None);
        assert_eq!(argument_type("pg_sleep", 0, &[None, None]), None);
        assert_eq!(argument_type("nosuch", 0, &[None]), None);
    }
}
