//! A grammar of pgvector's SQL over the fuzzer's schema: DDL with vector
//! columns and ANN indexes, INSERT/UPDATE/DELETE, SELECT with every KNN
//! operator, vector literals (NaN, Infinity, wrong dimensions, broken
//! text), casts, functions, aggregates, subqueries, joins, CTEs, COPY and
//! settings. Names and types are mostly right, so statements reach the
//! planner and the executor, and sometimes wrong, so the errors are
//! exercised too. The grammar's expressions nest at most [`MAX_DEPTH`]
//! deep (each level multiplies the statement's size); depth comes from
//! chains of up to [`MAX_CHAIN`] terms and from the mutator's parentheses,
//! both past the old stack-overflow points (issue 10, defect 1).

use super::gen::Gen;

/// Deepest expression nesting generated.
pub const MAX_DEPTH: usize = 5;
/// Longest operator chain (`a + a + …`, `x OR x OR …`) generated: a debug
/// build's shard overflowed its stack near 1,200 terms before the fix.
pub const MAX_CHAIN: usize = 3000;

/// The tables every case may read (created by [`setup`]).
pub const ITEMS: &str = "fz_items";
/// The second table, for joins.
pub const DOCS: &str = "fz_docs";
/// Scratch tables generated DDL may create, write, index and drop.
const SCRATCH: &[&str] = &["fz_t0", "fz_t1", "fz_t2"];

/// The statements that create and fill the schema (run once per target).
pub fn setup() -> Vec<String> {
    let mut g = Gen::new(0x5eed);
    let mut items = Vec::new();
    let mut docs = Vec::new();
    for id in 0..40 {
        let v: Vec<String> = (0..3).map(|_| format!("{}", g.range(-9, 9))).collect();
        let bits: String = (0..8).map(|_| g.choose(&['0', '1'])).collect();
        items.push(format!(
            "({id}, {}, 'item {id}', '[{}]', '[{}]', '{{{}:{}}}/5', '{bits}')",
            id % 4,
            v.join(","),
            v.join(","),
            1 + id % 5,
            g.range(-3, 3)
        ));
        docs.push(format!(
            "({id}, {}, 'doc {id}', {})",
            g.range(0, 45),
            g.range(0, 100) as f64 / 7.0
        ));
    }
    vec![
        format!("CREATE TABLE {ITEMS} (id bigint PRIMARY KEY, category int, name text, embedding vector(3), h halfvec(3), s sparsevec(5), b bit(8))"),
        format!("CREATE TABLE {DOCS} (id int PRIMARY KEY, item_id bigint, body text, score double precision)"),
        format!("INSERT INTO {ITEMS} VALUES {}", items.join(", ")),
        format!("INSERT INTO {DOCS} VALUES {}", docs.join(", ")),
        format!("CREATE INDEX fz_items_hnsw ON {ITEMS} USING hnsw (embedding vector_l2_ops)"),
        format!("CREATE INDEX fz_items_ivf ON {ITEMS} USING ivfflat (embedding vector_cosine_ops) WITH (lists = 2)"),
        format!("CREATE INDEX fz_items_h ON {ITEMS} USING hnsw (h halfvec_ip_ops)"),
        format!("CREATE INDEX fz_items_s ON {ITEMS} USING hnsw (s sparsevec_l1_ops)"),
        format!("CREATE INDEX fz_items_b ON {ITEMS} USING hnsw (b bit_jaccard_ops)"),
        format!("CREATE INDEX fz_docs_item ON {DOCS} (item_id)"),
    ]
}

/// Column of a known table and its SQL type family.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Text,
    Float,
    Vector,
    Half,
    Sparse,
    Bit,
}

const ITEM_COLUMNS: &[(&str, Kind)] = &[
    ("id", Kind::Int),
    ("category", Kind::Int),
    ("name", Kind::Text),
    ("embedding", Kind::Vector),
    ("h", Kind::Half),
    ("s", Kind::Sparse),
    ("b", Kind::Bit),
];
const DOC_COLUMNS: &[(&str, Kind)] = &[
    ("id", Kind::Int),
    ("item_id", Kind::Int),
    ("body", Kind::Text),
    ("score", Kind::Float),
];

const KNN_OPERATORS: &[&str] = &["<->", "<#>", "<=>", "<+>", "<~>", "<%>"];
const BINARY_OPERATORS: &[&str] = &[
    "+",
    "-",
    "*",
    "/",
    "%",
    "||",
    "=",
    "<>",
    "<",
    ">",
    "<=",
    ">=",
    "AND",
    "OR",
    "<->",
    "<#>",
    "<=>",
    "<+>",
    "<~>",
    "<%>",
    "LIKE",
    "IS DISTINCT FROM",
];
const FUNCTIONS: &[(&str, usize)] = &[
    ("l2_distance", 2),
    ("cosine_distance", 2),
    ("inner_product", 2),
    ("l1_distance", 2),
    ("hamming_distance", 2),
    ("jaccard_distance", 2),
    ("vector_dims", 1),
    ("vector_norm", 1),
    ("l2_norm", 1),
    ("l2_normalize", 1),
    ("binary_quantize", 1),
    ("subvector", 3),
    ("abs", 1),
    ("length", 1),
    ("lower", 1),
    ("upper", 1),
    ("coalesce", 2),
    ("greatest", 3),
    ("least", 2),
    ("round", 1),
    ("sqrt", 1),
    ("mod", 2),
    ("array_length", 2),
    ("nosuchfunction", 1),
];
const AGGREGATES: &[&str] = &["count", "sum", "avg", "min", "max"];
const TYPES: &[&str] = &[
    "vector",
    "vector(3)",
    "vector(2)",
    "vector(16001)",
    "vector(0)",
    "halfvec",
    "halfvec(3)",
    "sparsevec",
    "sparsevec(5)",
    "bit(8)",
    "bit(3)",
    "varbit",
    "int",
    "bigint",
    "smallint",
    "real",
    "double precision",
    "numeric",
    "text",
    "varchar(2)",
    "boolean",
    "real[]",
    "int[]",
    "regclass",
    "nosuchtype",
];
const OPCLASSES: &[&str] = &[
    "vector_l2_ops",
    "vector_ip_ops",
    "vector_cosine_ops",
    "vector_l1_ops",
    "halfvec_l2_ops",
    "halfvec_ip_ops",
    "halfvec_cosine_ops",
    "halfvec_l1_ops",
    "sparsevec_l2_ops",
    "sparsevec_ip_ops",
    "sparsevec_cosine_ops",
    "sparsevec_l1_ops",
    "bit_hamming_ops",
    "bit_jaccard_ops",
    "no_such_ops",
];

/// A number, sometimes an extreme or special one.
pub fn number(g: &mut Gen) -> String {
    match g.below(12) {
        0 => g
            .pick(&["NaN", "Infinity", "-Infinity", "inf", "nan"])
            .to_string(),
        1 => g
            .pick(&[
                "1e39", "-1e39", "1e-46", "3.4e38", "1e308", "1e309", "-0", "0.0",
            ])
            .to_string(),
        2 => g
            .pick(&[
                "2147483647",
                "2147483648",
                "-2147483648",
                "9223372036854775807",
                "9223372036854775808",
                "-9223372036854775809",
            ])
            .to_string(),
        3 => format!("{}.{}", g.range(-99, 99), g.range(0, 999)),
        4 => format!("{}e{}", g.range(-9, 9), g.range(-50, 50)),
        _ => g.range(-5, 45).to_string(),
    }
}

/// The text of a dense vector: usually well-formed with 3 dimensions,
/// sometimes with other dimensions, special values or broken syntax.
pub fn vector_text(g: &mut Gen) -> String {
    let dims = match g.below(10) {
        0 => g.choose(&[0usize, 1, 2, 4, 5]),
        1 if g.chance(0.05) => g.choose(&[16000usize, 16001]),
        _ => 3,
    };
    let parts: Vec<String> = (0..dims)
        .map(|_| {
            if g.chance(0.1) {
                number(g)
            } else {
                g.range(-9, 9).to_string()
            }
        })
        .collect();
    let text = format!("[{}]", parts.join(","));
    if !g.chance(0.1) {
        return text;
    }
    match g.below(8) {
        0 => "[]".into(),
        1 => "[1,,2]".into(),
        2 => "[1 2 3]".into(),
        3 => text.replacen('[', "", 1),
        4 => format!("{text}x"),
        5 => " [ 1 , 2 , 3 ] ".into(),
        6 => "[1,2,3".into(),
        _ => format!("[{}]", "1,".repeat(g.below(5))),
    }
}

/// The text of a sparse vector, sometimes malformed.
pub fn sparse_text(g: &mut Gen) -> String {
    let dim = if g.chance(0.9) {
        5
    } else {
        g.range(-1, 1_000_000_001)
    };
    let n = g.count(4);
    let elems: Vec<String> = (0..n)
        .map(|_| {
            let i = if g.chance(0.9) {
                g.range(1, 5)
            } else {
                g.range(-1, 7)
            };
            format!(
                "{i}:{}",
                if g.chance(0.9) {
                    g.range(-9, 9).to_string()
                } else {
                    number(g)
                }
            )
        })
        .collect();
    match g.below(14) {
        0 => "{1:1}".into(),
        1 => "{}/0".into(),
        2 => "{1:1,/5".into(),
        _ => format!("{{{}}}/{dim}", elems.join(",")),
    }
}

/// The text of a bit string, sometimes of another length or not bits.
pub fn bit_text(g: &mut Gen) -> String {
    let n = if g.chance(0.8) { 8 } else { g.below(12) };
    let mut s: String = (0..n).map(|_| g.choose(&['0', '1'])).collect();
    if g.chance(0.05) {
        s.push('2');
    }
    s
}

/// A literal of the given kind, quoted and sometimes cast.
fn literal(g: &mut Gen, kind: Kind) -> String {
    let (text, ty) = match kind {
        Kind::Vector => (vector_text(g), "vector"),
        Kind::Half => (vector_text(g), "halfvec"),
        Kind::Sparse => (sparse_text(g), "sparsevec"),
        Kind::Bit => (bit_text(g), "bit(8)"),
        Kind::Int => return number(g),
        Kind::Float => return format!("'{}'::float8", number(g)),
        Kind::Text => return format!("'{}'", g.pick(&["item 1", "", "x%", "doc", "it''s"])),
    };
    match g.below(4) {
        0 => format!("'{text}'"),
        1 => format!("'{text}'::{ty}"),
        2 => format!("'{text}'::{}", g.pick(TYPES)),
        _ => format!("CAST('{text}' AS {ty})"),
    }
}

/// Which columns the expression generator may name.
#[derive(Clone, Copy)]
pub struct Scope {
    columns: &'static [(&'static str, Kind)],
    qualifier: Option<&'static str>,
}

impl Scope {
    fn items() -> Scope {
        Scope {
            columns: ITEM_COLUMNS,
            qualifier: None,
        }
    }
}

fn column(g: &mut Gen, scope: Scope) -> (String, Kind) {
    let (name, kind) = scope.columns[g.below(scope.columns.len())];
    let name = if g.chance(0.03) {
        "no_such_column"
    } else {
        name
    };
    match scope.qualifier {
        Some(q) => (format!("{q}.{name}"), kind),
        None => (name.to_string(), kind),
    }
}

/// A KNN distance: a vector column, an operator (usually the matching
/// kind), a query literal or parameter.
fn distance(g: &mut Gen, scope: Scope, params: &mut usize) -> String {
    let vectors: Vec<(&str, Kind)> = scope
        .columns
        .iter()
        .copied()
        .filter(|(_, k)| matches!(k, Kind::Vector | Kind::Half | Kind::Sparse | Kind::Bit))
        .collect();
    let (col, kind) = if vectors.is_empty() {
        ("embedding", Kind::Vector)
    } else {
        vectors[g.below(vectors.len())]
    };
    let op = if kind == Kind::Bit && g.chance(0.8) {
        g.pick(&["<~>", "<%>"])
    } else if g.chance(0.9) {
        g.pick(&["<->", "<#>", "<=>", "<+>"])
    } else {
        g.pick(KNN_OPERATORS)
    };
    let rhs = if *params > 0 && g.chance(0.5) {
        format!("${}", g.range(1, *params as i64))
    } else {
        literal(g, kind)
    };
    let col = match scope.qualifier {
        Some(q) => format!("{q}.{col}"),
        None => col.to_string(),
    };
    format!("{col} {op} {rhs}")
}

/// An expression at most `depth` levels deep.
fn expr(g: &mut Gen, scope: Scope, depth: usize, params: &mut usize) -> String {
    if depth == 0 || g.chance(0.3) {
        return match g.below(10) {
            0..=3 => column(g, scope).0,
            4 if *params > 0 => format!("${}", g.range(1, *params as i64)),
            5 => g.pick(&["NULL", "true", "false", "DEFAULT"]).to_string(),
            6 => distance(g, scope, params),
            _ => {
                let kind = g.choose(&[
                    Kind::Int,
                    Kind::Text,
                    Kind::Float,
                    Kind::Vector,
                    Kind::Half,
                    Kind::Sparse,
                    Kind::Bit,
                ]);
                literal(g, kind)
            }
        };
    }
    let d = depth - 1;
    match g.below(13) {
        0 | 1 => format!(
            "{} {} {}",
            expr(g, scope, d, params),
            g.pick(BINARY_OPERATORS),
            expr(g, scope, d, params)
        ),
        2 => format!(
            "{}{}",
            g.pick(&["NOT ", "-", "+", "@"]),
            expr(g, scope, d, params)
        ),
        3 => {
            let (name, arity) = FUNCTIONS[g.below(FUNCTIONS.len())];
            let arity = if g.chance(0.9) { arity } else { g.count(4) };
            let args: Vec<String> = (0..arity).map(|_| expr(g, scope, d, params)).collect();
            format!("{name}({})", args.join(", "))
        }
        4 => format!("({})::{}", expr(g, scope, d, params), g.pick(TYPES)),
        5 => format!(
            "CASE WHEN {} THEN {} ELSE {} END",
            expr(g, scope, d, params),
            expr(g, scope, d, params),
            expr(g, scope, d, params)
        ),
        6 => format!(
            "{} {}",
            expr(g, scope, d, params),
            g.pick(&[
                "IS NULL",
                "IS NOT NULL",
                "BETWEEN 1 AND 10",
                "IN (1, 2, 3)",
                "NOT IN (0)",
                "LIKE 'item%'"
            ])
        ),
        7 => format!("({})", select(g, d, params)),
        8 => format!("EXISTS ({})", select(g, d, params)),
        9 => format!("{} IN ({})", column(g, scope).0, select(g, d, params)),
        10 => chain(g, scope),
        11 => format!("({})", expr(g, scope, d, params)),
        _ => distance(g, scope, params),
    }
}

/// A flat chain `x op x op …` of up to [`MAX_CHAIN`] terms.
fn chain(g: &mut Gen, scope: Scope) -> String {
    let op = g.pick(&[" + ", " OR ", " AND ", " || ", " * "]);
    let n = 2 + g.below(MAX_CHAIN - 1);
    let term = if g.chance(0.5) {
        column(g, scope).0
    } else {
        literal(g, Kind::Int)
    };
    vec![term; n].join(op)
}

/// A SELECT statement.
pub fn select(g: &mut Gen, depth: usize, params: &mut usize) -> String {
    let scope = Scope::items();
    match g.below(8) {
        0 => knn(g, params),
        1 => join(g, depth, params),
        2 => aggregate(g, depth, params),
        3 => format!(
            "WITH {} near AS (SELECT id, {} AS d FROM {ITEMS} ORDER BY d LIMIT {}) SELECT * FROM near WHERE d < {} ORDER BY d",
            g.pick(&["", "MATERIALIZED", "NOT MATERIALIZED"]),
            distance(g, scope, params),
            g.range(0, 10),
            number(g)
        ),
        4 => format!(
            "SELECT * FROM ({}) AS sub {}",
            knn(g, params),
            g.pick(&["", "ORDER BY 1", "LIMIT 2", "WHERE id > 3"])
        ),
        5 => {
            let items: Vec<String> = (0..1 + g.count(3)).map(|_| expr(g, scope, depth, params)).collect();
            format!("SELECT {}", items.join(", "))
        }
        6 => format!(
            "VALUES ({}), ({})",
            literal(g, Kind::Vector),
            literal(g, Kind::Vector)
        ),
        _ => {
            let items: Vec<String> = (0..1 + g.count(3)).map(|_| expr(g, scope, depth, params)).collect();
            let mut s = format!(
                "SELECT {}{} FROM {ITEMS}",
                g.pick(&["", "", "DISTINCT "]),
                items.join(", ")
            );
            if g.chance(0.6) {
                s += &format!(" WHERE {}", expr(g, scope, depth, params));
            }
            if g.chance(0.5) {
                s += &format!(" ORDER BY {}", expr(g, scope, depth.min(2), params));
            }
            if g.chance(0.5) {
                s += &format!(" LIMIT {}", limit(g, params));
            }
            s
        }
    }
}

fn limit(g: &mut Gen, params: &mut usize) -> String {
    if *params > 0 && g.chance(0.3) {
        return format!("${}", g.range(1, *params as i64));
    }
    match g.below(6) {
        0 => number(g),
        1 => "ALL".into(),
        _ => g.range(0, 10).to_string(),
    }
}

/// The KNN shape pgvector users write, with variations.
fn knn(g: &mut Gen, params: &mut usize) -> String {
    let scope = Scope::items();
    let d = distance(g, scope, params);
    let mut s = format!(
        "SELECT id{} FROM {ITEMS}",
        if g.chance(0.5) {
            format!(", {d} AS distance")
        } else {
            String::new()
        }
    );
    if g.chance(0.4) {
        s += &format!(" WHERE {}", expr(g, scope, 2, params));
    }
    let order = if g.chance(0.2) {
        "distance".to_string()
    } else {
        d
    };
    s += &format!(" ORDER BY {order}");
    if g.chance(0.2) {
        s += g.pick(&[" DESC", " NULLS FIRST", ", id"]);
    }
    if g.chance(0.9) {
        s += &format!(" LIMIT {}", limit(g, params));
    }
    if g.chance(0.2) {
        s += &format!(" OFFSET {}", limit(g, params));
    }
    s
}

fn join(g: &mut Gen, depth: usize, params: &mut usize) -> String {
    let i = Scope {
        columns: ITEM_COLUMNS,
        qualifier: Some("i"),
    };
    let kind = g.pick(&[
        "JOIN",
        "LEFT JOIN",
        "RIGHT JOIN",
        "FULL JOIN",
        "CROSS JOIN",
        "JOIN LATERAL",
    ]);
    let on = if *kind == *"CROSS JOIN" {
        String::new()
    } else {
        " ON d.item_id = i.id".to_string()
    };
    let mut s = format!(
        "SELECT i.id, d.body, {} FROM {ITEMS} i {kind} {DOCS} d{on}",
        expr(g, i, depth.min(2), params)
    );
    if g.chance(0.5) {
        s += &format!(" WHERE {}", expr(g, i, depth.min(2), params));
    }
    s += &format!(
        " ORDER BY {} LIMIT {}",
        distance(g, i, params),
        g.range(0, 5)
    );
    s
}

fn aggregate(g: &mut Gen, depth: usize, params: &mut usize) -> String {
    let scope = Scope::items();
    let agg = g.pick(AGGREGATES);
    let arg = if g.chance(0.2) {
        "*".to_string()
    } else {
        column(g, scope).0
    };
    let mut s = format!("SELECT category, {agg}({arg}) FROM {ITEMS}");
    if g.chance(0.3) {
        s += &format!(" WHERE {}", expr(g, scope, depth.min(2), params));
    }
    s += " GROUP BY category";
    if g.chance(0.3) {
        s += &format!(" HAVING {agg}({arg}) IS NOT NULL");
    }
    s + " ORDER BY 1"
}

fn scratch(g: &mut Gen) -> &'static str {
    SCRATCH[g.below(SCRATCH.len())]
}

fn create_table(g: &mut Gen) -> String {
    let n = 1 + g.count(4);
    let cols: Vec<String> = (0..n)
        .map(|i| {
            let ty = g.pick(TYPES);
            let extra = g.pick(&[
                "",
                "",
                " NOT NULL",
                " DEFAULT NULL",
                " PRIMARY KEY",
                " UNIQUE",
            ]);
            format!("c{i} {ty}{extra}")
        })
        .collect();
    format!(
        "CREATE TABLE {}{} (id bigint PRIMARY KEY, {})",
        g.pick(&["", "IF NOT EXISTS "]),
        scratch(g),
        cols.join(", ")
    )
}

fn create_index(g: &mut Gen) -> String {
    let table = if g.chance(0.3) { ITEMS } else { scratch(g) };
    let col = g.pick(&["c0", "c1", "embedding", "h", "s", "b", "id"]);
    let with = match g.below(5) {
        0 => format!(
            " WITH (m = {}, ef_construction = {})",
            g.range(-1, 101),
            g.range(0, 1001)
        ),
        1 => format!(" WITH (lists = {})", g.range(-1, 40000)),
        2 => " WITH (nosuch = 1)".to_string(),
        _ => String::new(),
    };
    format!(
        "CREATE INDEX {}ON {table} USING {} ({col} {}){with}",
        g.pick(&["", "IF NOT EXISTS fz_ix ", "fz_ix "]),
        g.pick(&["hnsw", "ivfflat", "btree", "gist"]),
        g.pick(OPCLASSES)
    )
}

fn insert(g: &mut Gen, params: &mut usize) -> String {
    if g.chance(0.5) {
        let rows: Vec<String> = (0..1 + g.count(3))
            .map(|_| {
                format!(
                    "({}, {}, {}, {}, {}, {}, {})",
                    g.range(40, 200),
                    g.range(0, 5),
                    literal(g, Kind::Text),
                    literal(g, Kind::Vector),
                    literal(g, Kind::Half),
                    literal(g, Kind::Sparse),
                    literal(g, Kind::Bit)
                )
            })
            .collect();
        let conflict = g.pick(&[
            "",
            " ON CONFLICT DO NOTHING",
            " ON CONFLICT (id) DO UPDATE SET embedding = EXCLUDED.embedding",
        ]);
        let returning = g.pick(&[
            "",
            " RETURNING id",
            " RETURNING *",
            " RETURNING embedding <-> '[1,2,3]'",
        ]);
        return format!(
            "INSERT INTO {ITEMS} VALUES {}{conflict}{returning}",
            rows.join(", ")
        );
    }
    let table = scratch(g);
    let n = 1 + g.count(3);
    let values: Vec<String> = (0..n)
        .map(|_| {
            if *params > 0 && g.chance(0.3) {
                format!("${}", g.range(1, *params as i64))
            } else {
                let kind =
                    g.choose(&[Kind::Int, Kind::Vector, Kind::Text, Kind::Sparse, Kind::Bit]);
                literal(g, kind)
            }
        })
        .collect();
    format!(
        "INSERT INTO {table} VALUES ({}, {})",
        g.range(0, 50),
        values.join(", ")
    )
}

/// A statement of any kind; `params` is the number of `$n` parameters a
/// Bind will supply (0 for the simple protocol).
pub fn statement(g: &mut Gen, params: usize) -> String {
    let mut params = params;
    let p = &mut params;
    let scope = Scope::items();
    match g.below(24) {
        0..=5 => select(g, MAX_DEPTH, p),
        6..=8 => knn(g, p),
        9 | 10 => insert(g, p),
        11 => format!(
            "UPDATE {ITEMS} SET {} = {} WHERE id = {}{}",
            g.pick(&["embedding", "h", "s", "b", "name", "category"]),
            expr(g, scope, 2, p),
            g.range(40, 60),
            g.pick(&["", " RETURNING *"])
        ),
        12 => format!(
            "DELETE FROM {} WHERE id {} {}",
            g.pick(&[ITEMS, "fz_t0", "fz_t1"]),
            g.pick(&[">=", "="]),
            g.range(40, 200)
        ),
        13 => create_table(g),
        14 => create_index(g),
        15 => format!(
            "DROP {} {}{}",
            g.pick(&["TABLE", "INDEX"]),
            g.pick(&["", "IF EXISTS "]),
            g.pick(&["fz_t0", "fz_t1", "fz_t2", "fz_ix"])
        ),
        16 => format!(
            "SET {}{} = {}",
            g.pick(&["", "LOCAL ", "SESSION "]),
            g.pick(&[
                "hnsw.ef_search",
                "hnsw.iterative_scan",
                "hnsw.max_scan_tuples",
                "hnsw.scan_mem_multiplier",
                "ivfflat.probes",
                "ivfflat.iterative_scan",
                "ivfflat.max_probes",
                "search_path",
                "client_encoding",
                "DateStyle",
                "work_mem",
                "no.such_setting",
                "application_name"
            ]),
            g.pick(&[
                "1",
                "0",
                "-1",
                "40",
                "1000",
                "1001",
                "relaxed_order",
                "strict_order",
                "off",
                "'x'",
                "DEFAULT",
                "99999999999",
                "'UTF8'"
            ])
        ),
        17 => format!(
            "SHOW {}",
            g.pick(&[
                "hnsw.ef_search",
                "ivfflat.probes",
                "ALL",
                "server_version",
                "no_such",
                "statement_timeout"
            ])
        ),
        18 => g
            .pick(&[
                "BEGIN",
                "COMMIT",
                "ROLLBACK",
                "SAVEPOINT a",
                "ROLLBACK TO a",
                "RELEASE a",
                "START TRANSACTION READ ONLY",
                "BEGIN ISOLATION LEVEL SERIALIZABLE",
                "PREPARE TRANSACTION 'fz'",
                "ROLLBACK PREPARED 'fz'",
                "COMMIT PREPARED 'fz'",
            ])
            .to_string(),
        19 => format!(
            "EXPLAIN {}{}",
            g.pick(&["", "ANALYZE ", "(COSTS OFF) "]),
            knn(g, p)
        ),
        20 => format!(
            "COPY {} TO STDOUT{}",
            g.pick(&[
                ITEMS,
                DOCS,
                "(SELECT id, embedding FROM fz_items LIMIT 3)",
                "fz_t0"
            ]),
            g.pick(&[
                "",
                " (FORMAT csv)",
                " (FORMAT binary)",
                " WITH (FORMAT text, HEADER)",
                " (FORMAT nosuch)"
            ])
        ),
        21 => format!("TRUNCATE {}", scratch(g)),
        22 => format!(
            "ALTER TABLE {} ADD COLUMN {} {}",
            scratch(g),
            g.pick(&["extra", "id", "c0"]),
            g.pick(TYPES)
        ),
        _ => g
            .pick(&[
                "SELECT 1",
                "",
                ";",
                "SELECT version()",
                "SELECT * FROM pg_catalog.pg_type WHERE typname = 'vector'",
                "SELECT relname FROM pg_class",
                "SELECT current_setting('hnsw.ef_search')",
                "DISCARD ALL",
                "CREATE EXTENSION IF NOT EXISTS vector",
                "LISTEN x",
                "NOTIFY x",
            ])
            .to_string(),
    }
}

/// Rows for `COPY fz_items FROM STDIN` in `format` (text or csv), some
/// broken.
pub fn copy_rows(g: &mut Gen, csv: bool) -> Vec<String> {
    let sep = if csv { "," } else { "\t" };
    (0..1 + g.count(4))
        .map(|_| {
            let quote = |s: String| if csv { format!("\"{s}\"") } else { s };
            let mut fields = vec![
                g.range(40, 200).to_string(),
                g.range(0, 4).to_string(),
                "copied".to_string(),
                quote(vector_text(g)),
                quote(vector_text(g)),
                quote(sparse_text(g)),
                bit_text(g),
            ];
            match g.below(8) {
                0 => {
                    fields.pop();
                }
                1 => fields.push("extra".into()),
                2 => fields[0] = if csv { String::new() } else { "\\N".into() },
                3 => fields[3] = "\\x".into(),
                _ => {}
            }
            format!("{}\n", fields.join(sep))
        })
        .collect()
}
