//! pgvector's SQL dialect on top of sqlparser, shared by the shard executor
//! and the proxy: parsing with pgvector's operators, statement classes,
//! KNN recognition, rewriting for shards, shard-key extraction, aggregate
//! combination plans and parameters. Nothing here knows about the network
//! or storage; everything here is a pure function of the SQL text.

mod advisory;
mod aggregate;
mod classify;
mod constraints;
mod copy_data;
mod depth;
mod distinct;
mod error;
mod insert_rows;
pub mod jsonpath;
mod knn;
mod maintenance;
mod names;
mod params;
mod parse;
mod reference;
mod rewrite;
mod routing;
mod sequence_options;
mod session_values;
mod tokens;

pub use advisory::{advisory_hold, AdvisoryHold};
pub use aggregate::{aggregate_plan, AggregatePlan, CombinedColumn, DistinctAggregate, OrderKey};
pub use classify::{
    classify, CopyDirection, CopyFormat, CopyInfo, DdlAction, DdlInfo, SelectInfo, SetVariable,
    StatementKind, TransactionControl, TransactionModes,
};
pub use constraints::unshardable_constraint;
pub use copy_data::{binary_header, CopyOptions, Record, RecordReader, BINARY_TRAILER};
pub use distinct::{distinct_plan, has_shard_dependent_subquery};
pub use error::{Result, SqlError};
pub use insert_rows::{append_target, spelled_rows, spelled_values_mut, Place, SpelledRows};
pub use knn::{
    distance_operator, knn_query, negative_bound, placeholder_index, vector_cast, Bound, KnnQuery,
    QueryVector, Rerank, VectorCast, VectorSource,
};
pub use maintenance::{Maintenance, VacuumTargets};
pub use names::{column_name, fold, quote_ident, TableName};
pub use params::{params, ParamHint, Params};
pub use parse::{parse, parse_single, AlterSystem, Statement, TwoPhase, Utility};
pub use reference::{per_shard_default, per_shard_function, reference_join_problem, tables_named};
pub use rewrite::{
    rewrite_distinct_on_for_shard, rewrite_knn_for_shard, rewrite_sorted_for_shard, OutputColumn,
    ShardQuery, SortKey, HIDDEN_DISTANCE, HIDDEN_RERANK, HIDDEN_SORT_PREFIX,
};
pub use routing::{
    created_table, insert_key_values, insert_with_rows, restricted_keys, where_key_values,
    KeyValue, RowKey,
};
pub use session_values::{
    bind_session_values, may_call_set_config, may_use_session_values, set_config_calls,
    SessionValues, SetConfigCall,
};
